"""The status page in real headless Chromium (Debian's), driven by Playwright, while a run goes."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from freshbatch.runner import RunOptions, RunResult, run
from freshbatch.server import make_server
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, copy_demo
from tests.runner_support import fast, use_reference

# read at import: the autouse clean_environ fixture removes FRESHBATCH_* before each test
SCREENSHOT = bool(os.environ.get("FRESHBATCH_SCREENSHOT"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECONDS_PER_ANSWER = 0.7  # the fake model's pace: the run spans several 2 s polls
TIMEOUT_MS = 20_000

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@contextmanager
def status_page(workspace: Workspace) -> Iterator[str]:
    """The status server on 127.0.0.1, port 0, in a thread; yields its URL."""
    httpd = make_server(workspace, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextmanager
def open_page(browser: Any, url: str) -> Iterator[Any]:
    """A page on url; fails the test on any script error or console error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    try:
        page.goto(url)
        yield page
        assert problems == [], problems
    finally:
        context.close()


def cell(phase: int, batch: int, status: str | None = None) -> str:
    selector = f'#grid .cell[data-phase="{phase}"][data-batch="{batch}"]'
    return selector + (f'[data-status="{status}"]' if status else "")


def text(page: Any, selector: str) -> str:
    value: str = page.text_content(selector) or ""
    return value


def test_page_follows_a_run_without_reloading(
    browser: Any,
    workspace: Workspace,
    demo: str,
    demo_reference: Path,
    fake_api: Any,
    tmp_path: Path,
) -> None:
    answer = use_reference(fake_api, demo_reference)

    def slow_answer(body: dict[str, Any]) -> Any:
        time.sleep(SECONDS_PER_ANSWER)
        return answer(body)

    fake_api.responder = slow_answer
    results: list[RunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(run(workspace, "all", demo, fast(provider="anthropic"))),
        daemon=True,
    )
    with status_page(workspace) as url, open_page(browser, url + "#" + demo) as page:
        page.wait_for_selector(cell(1, 1, "pending"))
        assert text(page, "#merged-count") == "0 / 9"
        assert text(page, "#state") == "idle"
        assert text(page, "#run-info") == "never run"
        assert page.get_attribute("#bar-phase1", "aria-valuenow") == "0"
        assert page.locator("#grid .cell").count() == 9
        page.evaluate("window.__notReloaded = true")
        assert page.locator('#drift-charts svg.drift-chart[data-phase="5"] polyline').count() == 0

        runner.start()
        page.wait_for_selector('#state[data-state="running"]')
        page.wait_for_selector(cell(1, 1, "merged"))
        page.wait_for_function("document.getElementById('merged-count').textContent !== '0 / 9'")
        assert page.get_attribute("#bar-phase1", "aria-valuenow") != "0"
        assert text(page, "#total-cost") != "$0.0000"
        assert text(page, "#tokens-input") != "0"

        page.click(cell(1, 1))
        assert text(page, "#detail-title") == "Phase 1 · batch 1"
        assert text(page, "#detail-seeds") == "S0001 – S0020"
        assert text(page, "#detail-attempts") == "1"
        assert text(page, "#detail-status") == "merged"
        assert text(page, "#detail-tokens-input") != "0"
        page.keyboard.press("ArrowRight")  # keyboard selection moves along the batches
        assert text(page, "#detail-seeds") == "S0021 – S0040"
        assert page.get_attribute(cell(1, 2), "aria-selected") == "true"

        page.wait_for_selector('#state[data-state="completed"]')
        assert page.locator('#grid .cell[data-status="merged"]').count() == 9
        assert text(page, "#merged-count") == "9 / 9"
        assert text(page, "#count-phase5") == "3 / 3 merged"
        assert page.get_attribute(cell(1, 2), "aria-selected") == "true"  # kept across polls
        assert text(page, "#detail-title") == "Phase 1 · batch 2"
        page.wait_for_selector('#events li[data-event="run:end"]')
        # the drift chart follows the run: phase 5's figures appear once it merged
        page.wait_for_selector(
            '#drift-charts svg.drift-chart[data-phase="5"] polyline', state="attached"
        )
        assert page.locator("#drift-charts svg.drift-chart").count() == 3
        assert page.evaluate("window.__notReloaded") is True
        page.screenshot(path=str(tmp_path / "status-page-run.png"), full_page=True)
    runner.join(timeout=30)
    assert results and results[0].ok


def test_screenshot_of_the_demo_after_a_replay_run(
    browser: Any, workspace: Workspace, tmp_path: Path
) -> None:
    copy_demo(workspace, with_recordings=True)
    assert run(workspace, "all", DEMO, RunOptions(provider="replay")).ok
    with status_page(workspace) as url, open_page(browser, url) as page:
        page.wait_for_selector('#course-list button[aria-current="true"]')
        page.wait_for_selector('#state[data-state="completed"]')
        page.wait_for_selector('#events li[data-event="run:end"]')
        page.focus(cell(3, 2))
        page.keyboard.press("Enter")  # a batch that needed a second attempt
        assert text(page, "#detail-title") == "Phase 3 · batch 2"
        assert text(page, "#detail-attempts") == "2"
        assert text(page, cell(3, 2)) == "2"
        assert text(page, "#eta") == "done"
        page.wait_for_selector(
            '.drift-chart[data-phase="3"] polyline[data-figure="size"]', state="attached"
        )
        assert page.locator(".drift-chart").count() == 3
        verdict = page.locator(".drift-verdict").nth(1).text_content() or ""
        assert verdict.startswith("phase3, first third vs last third")
        shot = tmp_path / "status-page.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if SCREENSHOT:
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "status-page.png")
