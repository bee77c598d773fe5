"""The status page server over real HTTP: 127.0.0.1, port 0, in a thread."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from freshbatch import cli, server
from freshbatch.errors import InputError
from freshbatch.server import exposure_warning, make_server, tail_lines
from freshbatch.status import course_status
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, make_course
from tests.runner_support import snapshot, wait_for

SCHEMA = json.loads((REPO / "freshbatch" / "schemas" / "progress.schema.json").read_text("utf-8"))
NEVER_RUN = "never_run"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Sends the request target exactly as given (http.client does not normalise it)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self, method: str, target: str, body: bytes | None = None, host: str | None = None
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Host": host} if host is not None else {}
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, target: str) -> Reply:
        return self.request("GET", target)


@pytest.fixture
def client(workspace: Workspace) -> Iterator[Client]:
    """A status server on the test workspace, stopped by the test."""
    httpd = make_server(workspace, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Client(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def courses(workspace: Workspace, demo_reference: Path) -> Workspace:
    """The demo after a completed replay run, plus a 3-seed course that never ran."""
    shutil.copytree(demo_reference, workspace.courses_dir / DEMO)
    make_course(workspace, NEVER_RUN, ["I want.", "You want.", "We want."], batch_size=2)
    return workspace


def progress_file(workspace: Workspace, code: str = DEMO) -> Path:
    return workspace.courses_dir / code / ".freshbatch" / "progress.json"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---- the page and its files -------------------------------------------------


def test_page_and_its_files_are_served_with_their_types(client: Client) -> None:
    page = client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.body.decode("utf-8")
    assert 'id="grid"' in html
    referenced = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert sorted(referenced) == ["/static/app.js", "/static/favicon.svg", "/static/style.css"]
    types = {
        "/static/app.js": "application/javascript",
        "/static/style.css": "text/css",
        "/static/favicon.svg": "image/svg+xml",
        "/static/index.html": "text/html; charset=utf-8",
    }
    for target, content_type in types.items():
        reply = client.get(target)
        assert reply.status == 200, target
        assert reply.headers["Content-Type"] == content_type
        name = target.removeprefix("/static/")
        assert reply.body == (REPO / "freshbatch" / "static" / name).read_bytes()
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'self'
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_page_uses_no_network_and_no_inner_html() -> None:
    static = REPO / "freshbatch" / "static"
    for path in static.iterdir():
        text = path.read_text("utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name
    assert not re.search(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write",
        (static / "app.js").read_text("utf-8"),
    )


def test_head_sends_headers_only(client: Client) -> None:
    reply = client.request("HEAD", "/")
    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) > 0
    assert reply.body == b""


# ---- the JSON endpoints -----------------------------------------------------


def test_courses_lists_each_course_with_its_state(courses: Workspace, client: Client) -> None:
    reply = client.get("/api/courses")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"
    listed = {c["code"]: c for c in reply.json()}
    assert sorted(listed) == [DEMO, NEVER_RUN]
    assert listed[DEMO]["status"] == "completed"
    assert listed[DEMO]["stale"] is False
    assert listed[DEMO]["phases"]["phase3"] == {"merged": 3, "total": 3}
    assert listed[DEMO]["cost_usd"] > 0
    assert listed[NEVER_RUN]["status"] == "idle"
    assert listed[NEVER_RUN]["phases"]["phase1"] == {"merged": 0, "total": 2}


def test_courses_reports_a_broken_course_without_failing(
    courses: Workspace, client: Client
) -> None:
    (courses.courses_dir / NEVER_RUN / "course.yaml").write_text("code: [\n", "utf-8")
    listed = {c["code"]: c for c in client.get("/api/courses").json()}
    assert listed[DEMO]["status"] == "completed"
    assert "invalid YAML" in listed[NEVER_RUN]["error"]
    reply = client.get(f"/api/courses/{NEVER_RUN}/progress")
    assert reply.status == 422
    assert "invalid YAML" in reply.json()["error"]


def test_progress_is_the_file_byte_for_byte(courses: Workspace, client: Client) -> None:
    reply = client.get(f"/api/courses/{DEMO}/progress")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["X-Freshbatch-Stale"] == "false"
    assert reply.body == progress_file(courses).read_bytes()
    jsonschema.validate(reply.json(), SCHEMA)


def test_progress_is_never_reserialised(courses: Workspace, client: Client) -> None:
    state = json.loads(progress_file(courses).read_bytes())
    odd = (json.dumps(state, separators=(",", ":"), sort_keys=True) + "\n\n").encode()
    odd = odd.replace(b'"course":', b'"course" :  ', 1)
    progress_file(courses).write_bytes(odd)
    assert client.get(f"/api/courses/{DEMO}/progress").body == odd


def test_progress_of_a_dead_run_is_unchanged_and_flagged(
    courses: Workspace, client: Client
) -> None:
    state = json.loads(progress_file(courses).read_bytes())
    state.update(status="running", pid=dead_pid())
    raw = json.dumps(state, indent=2).encode()
    progress_file(courses).write_bytes(raw)
    reply = client.get(f"/api/courses/{DEMO}/progress")
    assert reply.body == raw  # the stale flag travels in a header, never in the body
    assert reply.headers["X-Freshbatch-Stale"] == "true"
    assert next(c for c in client.get("/api/courses").json() if c["code"] == DEMO)["stale"]


def test_progress_of_a_course_never_run_is_built_from_its_files(
    courses: Workspace, client: Client
) -> None:
    reply = client.get(f"/api/courses/{NEVER_RUN}/progress")
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    data = reply.json()
    jsonschema.validate(data, SCHEMA)
    expected = course_status(courses, NEVER_RUN)
    assert {**data, "updated_at": None} == {**expected, "updated_at": None}
    assert data["status"] == "idle" and data["total_batches"] == 2
    assert {b["status"] for b in data["batches"]} == {"pending"}
    assert len(data["batches"]) == 3 * 2


def test_progress_without_state_dir_reads_the_merged_files(
    courses: Workspace, client: Client
) -> None:
    shutil.rmtree(courses.courses_dir / DEMO / ".freshbatch")
    data = client.get(f"/api/courses/{DEMO}/progress").json()
    assert data["run"] is None
    assert {b["status"] for b in data["batches"]} == {"merged"}
    assert not (courses.courses_dir / DEMO / ".freshbatch").exists()


def write_events(workspace: Workspace, count: int, tail: bytes = b"") -> list[dict[str, Any]]:
    events = [{"time": f"t{i}", "event": "batch:start", "batch": i} for i in range(count)]
    path = workspace.courses_dir / DEMO / ".freshbatch" / "events.jsonl"
    lines = "".join(json.dumps(e) + "\n" for e in events)
    path.write_bytes(lines.encode() + tail)
    return events


def test_events_are_the_last_lines(courses: Workspace, client: Client) -> None:
    events = write_events(courses, 250, tail=b'{"time": "t250", "ev')  # a line being written
    url = f"/api/courses/{DEMO}/events"
    reply = client.get(url + "?limit=3")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json() == events[-2:]  # the third-last line is the unfinished one, skipped
    assert client.get(url).json() == events[-49:]  # default 50 lines
    assert client.get(url + "?limit=1000").json() == events[-199:]  # capped at 200 lines
    assert client.get(url + "?limit=0").json() == []
    for bad in ("abc", "-1", "1.5", "%2e"):
        assert client.get(f"{url}?limit={bad}").status == 400


def test_events_of_a_course_never_run_are_empty(courses: Workspace, client: Client) -> None:
    reply = client.get(f"/api/courses/{NEVER_RUN}/events?limit=5")
    assert (reply.status, reply.json()) == (200, [])


def test_events_of_a_real_run_end_with_run_end(courses: Workspace, client: Client) -> None:
    events = client.get(f"/api/courses/{DEMO}/events?limit=200").json()
    assert events[0]["event"] == "run:start"
    assert events[-1] == {**events[-1], "event": "run:end", "status": "completed"}


def test_drift_gives_every_batch_of_every_phase(courses: Workspace, client: Client) -> None:
    reply = client.get(f"/api/courses/{DEMO}/drift")
    assert reply.status == 200
    data = reply.json()
    assert [p["phase"] for p in data["phases"]] == [1, 3, 5]
    three = data["phases"][1]
    assert [r["batch"] for r in three["batches"]] == [1, 2, 3]
    assert three["batches"][1]["first_attempt_valid"] is False
    assert three["size_unit"] == "LEGOs per seed" and three["verdict"]


def test_drift_of_a_course_never_run_is_empty(courses: Workspace, client: Client) -> None:
    reply = client.get(f"/api/courses/{NEVER_RUN}/drift")
    assert (reply.status, reply.json()["phases"]) == (200, [])
    assert client.get("/api/courses/nope/drift").status == 404


def test_tail_lines_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "lines"
    lines = [(f"{i:05d}-" + "x" * (i % 300)).encode() for i in range(3000)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    for count in (1, 2, 199, 200, 2999, 3000, 5000):
        assert tail_lines(path, count) == lines[-count:]
    assert tail_lines(path, 0) == []
    path.write_bytes(b"")
    assert tail_lines(path, 5) == []


# ---- what is refused --------------------------------------------------------

REFUSED = [
    "/api/courses/nope/progress",
    "/api/courses/nope/events",
    "/api/courses/Demo_Ita_For_Eng/progress",
    "/api/courses/bad-code/progress",
    "/api/courses/..%2F..%2Fetc/progress",
    "/api/courses/..%2f..%2fetc/events?limit=5",
    "/api/courses/%2e%2e/progress",
    f"/api/courses/{DEMO}%2Fprogress",
    f"/api/courses/{DEMO}/../../../etc/passwd",
    f"/api/courses/{DEMO}/progress/",
    f"/api/courses/{DEMO}/plan",
    f"/api/courses/{DEMO}",
    "/api/courses/",
    "/api",
    "/static/../server.py",
    "/static/..%2Fserver.py",
    "/static/%2e%2e/server.py",
    "/static/%2e%2e%2fserver.py",
    "/static/..",
    "/static/server.py",
    "/static/",
    "/static",
    "/static/APP.JS",
    "/static/app.js/",
    "/static/app.js%00.css",
    "/freshbatch/server.py",
    "/../../etc/passwd",
    "//etc/passwd",
    "/courses/demo_ita_for_eng/.freshbatch/progress.json",
    "/favicon.ico",
]


@pytest.mark.parametrize("target", REFUSED)
def test_unknown_courses_paths_and_traversal_get_404(
    courses: Workspace, client: Client, target: str
) -> None:
    reply = client.get(target)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/json"
    assert len(reply.body) < 200
    assert "error" in reply.json()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("target", ["/", "/api/courses", f"/api/courses/{DEMO}/progress"])
def test_other_methods_are_refused_and_write_nothing(
    courses: Workspace, client: Client, method: str, target: str
) -> None:
    before = snapshot(courses.root)
    reply = client.request(method, target, body=b'{"status": "completed"}')
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"
    assert snapshot(courses.root) == before


def test_unknown_method_is_refused(client: Client) -> None:
    reply = client.request("BREW", "/")
    assert reply.status == 501
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_foreign_host_header_is_refused_on_loopback(client: Client) -> None:
    assert client.request("GET", "/api/courses", host="evil.example:8765").status == 400
    assert client.request("GET", "/api/courses", host=f"localhost:{client.port}").status == 200
    assert client.request("GET", "/api/courses", host="[::1]").status == 200


def every_path(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_no_request_writes_under_the_workspace(courses: Workspace, client: Client) -> None:
    shutil.rmtree(courses.courses_dir / DEMO / ".freshbatch")  # progress built from the files
    before, paths = snapshot(courses.root), every_path(courses.root)
    targets = ["/", "/static/app.js", "/api/courses", *REFUSED]
    for code in (DEMO, NEVER_RUN):
        targets += [f"/api/courses/{code}/progress", f"/api/courses/{code}/events?limit=9"]
    for target in targets:
        client.get(target)
    assert snapshot(courses.root) == before
    assert every_path(courses.root) == paths


# ---- binding and the command ------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_no_warning_on_loopback(host: str) -> None:
    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_warning_off_loopback(host: str) -> None:
    warning = exposure_warning(host)
    assert warning is not None and "reachable from the network" in warning


def run_serve_command(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    """`freshbatch serve` in-process in a thread; fetch the course list, then stop it."""
    started: list[Any] = []

    def recording_make_server(*args: Any) -> Any:
        started.append(make_server(*args))
        return started[-1]

    monkeypatch.setattr(server, "make_server", recording_make_server)
    codes: list[int] = []
    argv = ["--root", str(workspace.root), "serve", "--port", "0", *flags]
    thread = threading.Thread(target=lambda: codes.append(cli.main(argv)))
    thread.start()
    wait_for(lambda: bool(started) or not thread.is_alive(), 10, "the server to start")
    assert started, "serve returned before listening"
    port = started[0].server_address[1]
    listed = Client(port).get("/api/courses")
    started[0].shutdown()
    thread.join(timeout=10)
    assert listed.status == 200 and DEMO in listed.body.decode()
    assert codes == [0]


def test_serve_command_defaults_to_loopback(
    courses: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_serve_command(courses, monkeypatch)
    out, err = capsys.readouterr()
    assert re.search(r"http://127\.0\.0\.1:\d+/", out)
    assert err == ""


def test_serve_command_warns_off_loopback(
    courses: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_serve_command(courses, monkeypatch, "--host", "0.0.0.0")
    out, err = capsys.readouterr()
    assert re.search(r"http://0\.0\.0\.0:\d+/", out)
    assert "reachable from the network" in err


def test_busy_port_is_a_one_line_input_error(workspace: Workspace) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=f"127.0.0.1:{port}: cannot listen") as caught:
            make_server(workspace, "127.0.0.1", port)
    assert caught.value.exit_code == 2


def test_serve_needs_a_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--root", str(tmp_path), "serve", "--port", "0"]) == 2
    assert "not a freshbatch workspace" in capsys.readouterr().err


def test_ctrl_c_stops_the_command(courses: Workspace) -> None:
    import signal

    child = subprocess.Popen(
        [sys.executable, "-m", "freshbatch", "--root", str(courses.root), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FRESHBATCH_")},
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    assert "http://127.0.0.1:" in first
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=10)
    assert child.returncode in (0, 130), err
