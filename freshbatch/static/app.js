// freshbatch status page: polls the JSON endpoints and updates the DOM in place.
// All data goes through textContent or attributes, never through HTML markup.
"use strict";

const POLL_MS = 2000;
const COURSES_EVERY = 5; // refresh the course list every 5th poll
const EVENTS_LIMIT = 30;
const DRIFT_EVERY = 3; // the drift figures re-run the validators: every 3rd poll
const DRIFT_LINES = [
  ["first_errors_per_seed", "first-attempt errors / seed", "#c0392b"],
  ["merged_errors_per_seed", "merged errors / seed", "#8e44ad"],
  ["merged_warnings_per_seed", "merged warnings / seed", "#d68910"],
  ["size", "output size", "#2471a3"],
];
const SVG_NS = "http://www.w3.org/2000/svg";
const STATE_LABELS = {
  running: "running",
  paused: "paused for rate limits",
  completed: "completed",
  failed: "failed",
  idle: "idle",
  stale: "stopped unexpectedly",
};
const TOKEN_KINDS = [
  ["input", "input"],
  ["output", "output"],
  ["cache_read", "cache-read"],
  ["cache_write", "cache-write"],
];

const view = {
  course: null, // selected course code
  selected: null, // {phase, batch}
  progress: null, // the last progress document
  gridKey: "", // course, phases and batch count the grid was built for
  polls: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");
const fmtCost = (usd) => "$" + Number(usd || 0).toFixed(usd >= 10 ? 2 : 4);

function fmtTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return isNaN(date) ? String(iso) : date.toLocaleTimeString("en-GB");
}

function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + (s % 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function stateOf(progress) {
  return progress.stale ? "stale" : progress.status || "idle";
}

// ---- fetching -----------------------------------------------------------

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return { data, response };
}

async function poll() {
  try {
    if (view.polls % COURSES_EVERY === 0) await refreshCourses();
    if (view.course) await refreshCourse(view.course);
    setConnection("ok", "live · every " + POLL_MS / 1000 + " s");
  } catch (error) {
    setConnection("lost", "cannot reach the server: " + error.message);
  }
  view.polls += 1;
  setTimeout(poll, POLL_MS);
}

function setConnection(state, text) {
  const node = $("connection");
  node.dataset.state = state;
  node.textContent = text;
}

async function refreshCourses() {
  const { data } = await getJSON("/api/courses");
  renderCourseList(data);
  const codes = data.map((c) => c.code);
  const wanted = decodeURIComponent(location.hash.slice(1));
  const chosen = codes.includes(wanted) ? wanted : view.course || codes[0] || null;
  if (chosen !== view.course) selectCourse(chosen);
}

async function refreshCourse(code) {
  const url = "/api/courses/" + encodeURIComponent(code);
  let progress;
  try {
    const { data, response } = await getJSON(url + "/progress");
    progress = data;
    if (response.headers.get("X-Freshbatch-Stale") === "true") progress.stale = true;
  } catch (error) {
    if (error instanceof TypeError) throw error; // network down: reported by poll()
    return showError(code + ": " + error.message);
  }
  if (code !== view.course) return; // the user switched course meanwhile
  showError("");
  renderProgress(progress);
  const { data: events } = await getJSON(url + "/events?limit=" + EVENTS_LIMIT);
  if (code === view.course) renderEvents(events);
  if (view.polls % DRIFT_EVERY === 0 || view.driftFor !== code) {
    const { data: drift } = await getJSON(url + "/drift");
    if (code === view.course) renderDrift(drift);
  }
}

function showError(text) {
  const node = $("error");
  node.hidden = !text;
  node.textContent = text;
}

// ---- course list --------------------------------------------------------

function renderCourseList(courses) {
  const list = $("course-list");
  $("no-courses").hidden = courses.length > 0;
  list.replaceChildren(
    ...courses.map((course) => {
      const button = el("button", { type: "button", "data-course": course.code });
      button.append(el("span", { class: "course-code" }, course.code));
      const line = el("span", { class: "course-line" });
      if (course.error) {
        line.append(el("span", { class: "state small", "data-state": "failed" }, "error"));
        button.title = course.error;
      } else {
        const state = course.stale ? "stale" : course.status;
        line.append(el("span", { class: "state small", "data-state": state }, STATE_LABELS[state]));
        const phases = Object.values(course.phases || {});
        const merged = phases.reduce((sum, p) => sum + p.merged, 0);
        const total = phases.reduce((sum, p) => sum + p.total, 0);
        line.append(el("span", { class: "muted" }, merged + " / " + total));
      }
      button.append(line);
      if (course.code === view.course) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => selectCourse(course.code));
      const item = el("li");
      item.append(button);
      return item;
    }),
  );
}

function selectCourse(code) {
  if (code === view.course) return;
  view.course = code;
  view.selected = null;
  view.progress = null;
  view.gridKey = "";
  $("course").hidden = !code;
  if (!code) return;
  history.replaceState(null, "", "#" + encodeURIComponent(code));
  for (const button of document.querySelectorAll("#course-list button")) {
    if (button.dataset.course === code) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  setText("course-code", code);
  renderDetails();
  refreshCourse(code).catch((error) => setConnection("lost", error.message));
}

// ---- one course ---------------------------------------------------------

function renderProgress(progress) {
  view.progress = progress;
  const state = stateOf(progress);
  const badge = $("state");
  badge.dataset.state = state;
  setText("state", STATE_LABELS[state] || state);
  setText("course-code", progress.course || view.course);
  setText("updated-at", fmtTime(progress.updated_at));
  setText("run-info", runInfo(progress.run));
  renderCounters(progress, state);
  renderPhaseBars(progress);
  renderGrid(progress);
  renderDetails();
}

function runInfo(run) {
  if (!run) return "never run";
  const parts = [run.provider, run.model];
  if (Array.isArray(run.phases)) parts.push("phases " + run.phases.join(", "));
  parts.push("started " + fmtTime(run.started_at));
  return parts.filter(Boolean).join(" · ");
}

function renderCounters(progress, state) {
  const batches = progress.batches || [];
  const merged = batches.filter((b) => b.status === "merged").length;
  setText("merged-count", merged + " / " + batches.length);
  const totals = progress.totals || {};
  setText("total-cost", fmtCost(totals.cost_usd));
  for (const [key, id] of TOKEN_KINDS) setText("tokens-" + id, fmtInt((totals.tokens || {})[key]));
  let eta = "–";
  let at = "";
  if (state === "completed") eta = "done";
  else if (progress.eta && typeof progress.eta.seconds === "number") {
    eta = fmtDuration(progress.eta.seconds);
    at = "at " + fmtTime(progress.eta.at);
  }
  setText("eta", eta);
  setText("eta-at", at);
}

function phaseNumbers(progress) {
  const numbers = new Set((progress.batches || []).map((b) => b.phase));
  return [...numbers].sort((a, b) => a - b);
}

function renderPhaseBars(progress) {
  const holder = $("phase-bars");
  const total = progress.total_batches || 0;
  for (const phase of phaseNumbers(progress)) {
    let row = holder.querySelector('[data-phase="' + phase + '"]');
    if (!row) {
      row = el("div", { class: "phase-bar", "data-phase": String(phase) });
      row.append(el("span", { class: "phase-name" }, "Phase " + phase));
      const track = el("div", { class: "track", role: "progressbar", id: "bar-phase" + phase });
      track.setAttribute("aria-label", "phase " + phase + " merged batches");
      track.append(el("div", { class: "fill" }));
      row.append(track, el("span", { class: "phase-count", id: "count-phase" + phase }));
      holder.append(row);
    }
    const merged = (progress.batches || []).filter(
      (b) => b.phase === phase && b.status === "merged",
    ).length;
    const track = row.querySelector(".track");
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", String(total));
    track.setAttribute("aria-valuenow", String(merged));
    track.firstChild.style.width = (total ? (100 * merged) / total : 0) + "%";
    setText("count-phase" + phase, merged + " / " + total + " merged");
  }
}

function renderGrid(progress) {
  const phases = phaseNumbers(progress);
  const total = progress.total_batches || 0;
  const key = view.course + "|" + phases.join(",") + "|" + total;
  const grid = $("grid");
  if (key !== view.gridKey) {
    buildGrid(grid, phases, total);
    view.gridKey = key;
  }
  for (const batch of progress.batches || []) {
    const cell = grid.querySelector(cellSelector(batch.phase, batch.batch));
    if (!cell) continue;
    if (cell.dataset.status !== batch.status) cell.dataset.status = batch.status;
    cell.dataset.attempts = String(batch.attempts);
    const text = batch.attempts ? String(batch.attempts) : "";
    if (cell.textContent !== text) cell.textContent = text;
    const label = "phase " + batch.phase + " batch " + batch.batch + ": " + batch.status +
      ", " + batch.attempts + " attempt" + (batch.attempts === 1 ? "" : "s");
    cell.setAttribute("aria-label", label);
    cell.title = label + " (" + batch.first_seed + "–" + batch.last_seed + ")";
  }
}

function cellSelector(phase, batch) {
  return '.cell[data-phase="' + phase + '"][data-batch="' + batch + '"]';
}

function buildGrid(grid, phases, total) {
  grid.style.setProperty("--batches", String(total));
  const children = [el("span", { class: "corner" }, "batch")];
  for (let b = 1; b <= total; b++) children.push(el("span", { class: "col-head" }, String(b)));
  for (const phase of phases) {
    children.push(el("span", { class: "row-head" }, "Phase " + phase));
    for (let b = 1; b <= total; b++) {
      const cell = el("button", {
        type: "button",
        class: "cell",
        role: "gridcell",
        tabindex: "-1",
        "data-phase": String(phase),
        "data-batch": String(b),
        "data-status": "pending",
      });
      cell.addEventListener("click", () => selectCell(phase, b));
      cell.addEventListener("keydown", (event) => moveSelection(event, phase, b));
      children.push(cell);
    }
  }
  grid.replaceChildren(...children);
  const first = grid.querySelector(".cell");
  if (first) first.tabIndex = 0;
}

function selectCell(phase, batch, focus) {
  view.selected = { phase, batch };
  for (const cell of document.querySelectorAll("#grid .cell")) {
    const chosen = cell.dataset.phase === String(phase) && cell.dataset.batch === String(batch);
    cell.setAttribute("aria-selected", String(chosen));
    cell.tabIndex = chosen ? 0 : -1;
    if (chosen && focus) cell.focus();
  }
  renderDetails();
}

function moveSelection(event, phase, batch) {
  const phases = phaseNumbers(view.progress || {});
  const total = (view.progress || {}).total_batches || 0;
  let row = phases.indexOf(phase);
  let column = batch;
  if (event.key === "ArrowLeft") column = Math.max(1, batch - 1);
  else if (event.key === "ArrowRight") column = Math.min(total, batch + 1);
  else if (event.key === "ArrowUp") row = Math.max(0, row - 1);
  else if (event.key === "ArrowDown") row = Math.min(phases.length - 1, row + 1);
  else if (event.key === "Home") column = 1;
  else if (event.key === "End") column = total;
  else return;
  event.preventDefault();
  selectCell(phases[row], column, true);
}

function selectedBatch() {
  const progress = view.progress;
  const chosen = view.selected;
  if (!progress || !chosen) return null;
  return (progress.batches || []).find(
    (b) => b.phase === chosen.phase && b.batch === chosen.batch,
  );
}

function renderDetails() {
  const batch = selectedBatch();
  $("details-empty").hidden = Boolean(batch);
  $("details-body").hidden = !batch;
  if (!batch) {
    setText("detail-title", "Batch details");
    return;
  }
  const cell = document.querySelector(cellSelector(batch.phase, batch.batch));
  if (cell && cell.getAttribute("aria-selected") !== "true") selectCell(batch.phase, batch.batch);
  setText("detail-title", "Phase " + batch.phase + " · batch " + batch.batch);
  const status = $("detail-status");
  status.dataset.status = batch.status;
  setText("detail-status", batch.status);
  setText("detail-seeds", batch.first_seed + " – " + batch.last_seed);
  setText("detail-attempts", String(batch.attempts));
  setText("detail-started", fmtTime(batch.started_at));
  setText("detail-finished", fmtTime(batch.finished_at));
  for (const [key, id] of TOKEN_KINDS) {
    setText("detail-tokens-" + id, fmtInt((batch.tokens || {})[key]));
  }
  setText("detail-cost", fmtCost(batch.cost_usd));
  renderErrors(batch.last_errors || []);
}

function renderErrors(errors) {
  $("detail-no-errors").hidden = errors.length > 0;
  $("detail-errors").replaceChildren(
    ...errors.map((issue) => {
      const item = el("li", { "data-severity": issue.severity || "error" });
      item.append(el("span", { class: "rule" }, issue.rule || "?"));
      const where = [issue.seed_id, issue.lego_id].filter(Boolean).join(" ");
      if (where) item.append(el("span", { class: "where" }, where));
      item.append(el("span", { class: "message" }, issue.message || ""));
      return item;
    }),
  );
}

function renderEvents(events) {
  $("no-events").hidden = events.length > 0;
  const items = events
    .slice()
    .reverse()
    .map((event) => {
      const item = el("li", { "data-event": String(event.event) });
      item.append(el("time", {}, fmtTime(event.time)));
      item.append(el("span", { class: "event-name" }, String(event.event)));
      item.append(el("span", { class: "event-detail" }, eventDetail(event)));
      return item;
    });
  $("events").replaceChildren(...items);
}

const TOKEN_LABELS = { input: "in", output: "out", cache_read: "cache read", cache_write: "cache write" };

function eventDetail(event) {
  const parts = [];
  if (event.phase !== undefined) parts.push("phase " + event.phase);
  if (event.batch !== undefined) parts.push("batch " + event.batch);
  for (const [key, value] of Object.entries(event)) {
    if (["time", "event", "phase", "batch"].includes(key)) continue;
    if (value === null || typeof value === "object") continue;
    if (key in TOKEN_LABELS) {
      if (value) parts.push(TOKEN_LABELS[key] + " " + fmtInt(value));
    } else parts.push(key.replace(/_/g, " ") + " " + value);
  }
  return parts.join(" · ");
}

window.addEventListener("hashchange", () => {
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) selectCourse(wanted);
});
poll();

// ---- drift chart --------------------------------------------------------

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function renderDrift(drift) {
  view.driftFor = drift.course;
  const box = $("drift-charts");
  box.replaceChildren();
  if (drift.error) box.append(el("p", { class: "error" }, drift.error));
  for (const phase of drift.phases || []) {
    box.append(el("h3", {}, phase.key));
    box.append(el("p", { class: "drift-verdict" }, phase.verdict || "not enough batches yet for a verdict"));
    box.append(driftChart(phase));
    const legend = el("p", { class: "muted" });
    for (const [key, label] of DRIFT_LINES) {
      if (!(phase.batches || []).some((r) => r[key] !== null && r[key] !== undefined)) continue;
      const name = key === "size" && phase.size_unit ? phase.size_unit : label;
      legend.append(el("span", { class: "drift-key", "data-figure": key }, "━ " + name));
    }
    box.append(legend);
  }
}

function driftChart(phase) {
  const width = 720, height = 200, left = 30, top = 8, plotW = width - left - 10, plotH = height - 36;
  const rows = phase.batches || [];
  const count = Math.max(rows.length, 1);
  const x = (i) => left + (count > 1 ? (plotW * i) / (count - 1) : plotW / 2);
  const chart = svg("svg", { class: "drift-chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": phase.key + " drift by batch", "data-phase": String(phase.phase) });
  chart.append(svg("rect", { x: left, y: top, width: plotW, height: plotH, fill: "none", stroke: "#ccc" }));
  for (const [key, label, colour] of DRIFT_LINES) {
    const values = rows.map((r, i) => [i, r[key]]).filter(([, v]) => v !== null && v !== undefined);
    if (!values.length) continue;
    const peak = Math.max(...values.map(([, v]) => v)) || 1;
    const points = values.map(([i, v]) => `${x(i).toFixed(1)},${(top + plotH * (1 - v / peak)).toFixed(1)}`);
    const line = svg("polyline", { "data-figure": key, fill: "none", stroke: colour, "stroke-width": 2,
      points: points.join(" ") });
    const title = svg("title");
    title.textContent = (key === "size" && phase.size_unit ? phase.size_unit : label) + " (max " + peak.toFixed(2) + ")";
    line.append(title);
    chart.append(line);
  }
  for (let i = 0; i < count; i += Math.max(1, Math.floor(count / 10))) {
    const tick = svg("text", { x: x(i).toFixed(1), y: height - 14, "font-size": 10, "text-anchor": "middle" });
    tick.textContent = String(i + 1);
    chart.append(tick);
  }
  return chart;
}
