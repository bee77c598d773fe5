"""The status page: a read-only HTTP server on 127.0.0.1 (standard library only).

It serves its own routes and nothing else: the page, the files shipped in
freshbatch/static/ (by exact name), and three JSON endpoints. It never writes a file; the
progress endpoint returns a course's progress.json byte for byte, so any poller can use it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from freshbatch.errors import FreshbatchError, InputError
from freshbatch.report import course_drift
from freshbatch.status import course_status
from freshbatch.workspace import Workspace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
EVENTS_DEFAULT = 50
EVENTS_MAX = 200
HTML = "text/html; charset=utf-8"
JSON = "application/json"
# the only files served from freshbatch/static/: request name -> content type
STATIC_FILES = {
    "index.html": HTML,
    "app.js": "application/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
_PROGRESS = re.compile(r"/api/courses/([a-z0-9_]+)/progress")
_EVENTS = re.compile(r"/api/courses/([a-z0-9_]+)/events")
_DRIFT = re.compile(r"/api/courses/([a-z0-9_]+)/drift")
_STATIC = re.compile(r"/static/([a-z0-9_.-]+)")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Response:
    """What one request gets back."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_response(data: Any, status: int = 200, **headers: str) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    extra = (("Cache-Control", "no-store"), *headers.items())
    return Response(status, JSON, body, extra)


def not_found(what: str = "not found") -> Response:
    return json_response({"error": what}, HTTPStatus.NOT_FOUND)


def is_loopback(host: str) -> bool:
    """True when host only accepts connections from this machine."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to print when the page would be reachable from the network."""
    if is_loopback(host):
        return None
    return (
        f"warning: listening on {host}: the status page (course names, progress, errors, "
        "costs) is reachable from the network; use --host 127.0.0.1 to keep it on this machine"
    )


def static_bytes(name: str) -> bytes:
    """A file shipped in freshbatch/static/ (name comes from our own fixed list)."""
    return files("freshbatch").joinpath("static", name).read_bytes()


def tail_lines(path: Path, count: int) -> list[bytes]:
    """The last `count` lines of a file, reading backwards from its end."""
    if count <= 0:
        return []
    with path.open("rb") as handle:
        position = handle.seek(0, 2)
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(1 << 16, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = data.splitlines()
    if position > 0:
        lines = lines[1:]  # the first line read may have started before the chunk
    return lines[-count:]


class StatusApp:
    """Routes a GET path to a Response; reads the workspace, never writes to it."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def get(self, target: str) -> Response:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path in ("/", "/index.html"):
            return Response(HTTPStatus.OK, HTML, static_bytes("index.html"))
        if path == "/api/courses":
            return json_response(self.courses())
        for pattern, handler in (
            (_PROGRESS, self.progress),
            (_EVENTS, self.events),
            (_DRIFT, self.drift),
            (_STATIC, self.static),
        ):
            found = pattern.fullmatch(path)
            if found:
                return handler(found.group(1), query)
        return not_found()

    def courses(self) -> list[dict[str, Any]]:
        return [self.course_summary(code) for code in self.workspace.course_codes()]

    def course_summary(self, code: str) -> dict[str, Any]:
        """One line of the course list: state and merged batches per phase."""
        try:
            progress = course_status(self.workspace, code)
        except FreshbatchError as exc:
            return {"code": code, "error": str(exc)}
        total = progress.get("total_batches", 0)
        phases = {
            name: {"merged": summary.get("merged", 0), "total": total}
            for name, summary in progress.get("phases", {}).items()
        }
        return {
            "code": code,
            "status": progress.get("status"),
            "stale": bool(progress.get("stale")),
            "updated_at": progress.get("updated_at"),
            "total_batches": total,
            "phases": phases,
            "cost_usd": progress.get("totals", {}).get("cost_usd", 0.0),
        }

    def progress(self, code: str, query: dict[str, list[str]]) -> Response:
        """progress.json unchanged when it exists, else the shape built from the files."""
        course = self._course(code)
        if course is None:
            return not_found(f"no course {code}")
        try:
            body = (course / ".freshbatch" / "progress.json").read_bytes()
        except FileNotFoundError:
            return json_response(course_status(self.workspace, code))
        stale = bool(self._status(code).get("stale"))
        headers = (("Cache-Control", "no-store"), ("X-Freshbatch-Stale", str(stale).lower()))
        return Response(HTTPStatus.OK, JSON, body, headers)

    def events(self, code: str, query: dict[str, list[str]]) -> Response:
        """The last `limit` lines of events.jsonl as a JSON list (at most 200)."""
        course = self._course(code)
        if course is None:
            return not_found(f"no course {code}")
        raw = query.get("limit", [str(EVENTS_DEFAULT)])[-1]
        if not raw.isdigit():
            return json_response({"error": "limit must be a whole number"}, HTTPStatus.BAD_REQUEST)
        path = course / ".freshbatch" / "events.jsonl"
        try:
            lines = tail_lines(path, min(int(raw), EVENTS_MAX))
        except FileNotFoundError:
            lines = []
        return json_response([event for event in map(_parse_line, lines) if event is not None])

    def drift(self, code: str, query: dict[str, list[str]]) -> Response:
        """Per phase, the drift figures of every batch and the verdict (see `report`)."""
        if self._course(code) is None:
            return not_found(f"no course {code}")
        try:
            return json_response(course_drift(self.workspace, code))
        except FreshbatchError as exc:
            return json_response({"course": code, "error": str(exc), "phases": []})

    def static(self, name: str, query: dict[str, list[str]]) -> Response:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return not_found()
        return Response(HTTPStatus.OK, content_type, static_bytes(name))

    def _course(self, code: str) -> Path | None:
        """The course folder when `code` names a course of the workspace."""
        if code not in self.workspace.course_codes():
            return None
        return self.workspace.courses_dir / code

    def _status(self, code: str) -> dict[str, Any]:
        try:
            return course_status(self.workspace, code)
        except FreshbatchError:
            return {}


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """One event, or None for a line being written or damaged."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class StatusHandler(BaseHTTPRequestHandler):
    """GET and HEAD only; every other method gets 405 and changes nothing."""

    server: StatusServer
    server_version = "freshbatch"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:
        self._send(self._answer())

    def do_HEAD(self) -> None:
        self._send(self._answer(), with_body=False)

    def do_POST(self) -> None:
        self._refuse()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = do_POST

    def _answer(self) -> Response:
        if not self._host_allowed():
            return json_response({"error": "unexpected Host header"}, HTTPStatus.BAD_REQUEST)
        try:
            return self.server.app.get(self.path)
        except FreshbatchError as exc:  # a listed course whose files cannot be read
            return json_response({"error": str(exc)}, HTTPStatus.UNPROCESSABLE_ENTITY)

    def _host_allowed(self) -> bool:
        """On loopback, refuse other Host names (DNS rebinding from a web page)."""
        if not self.server.is_local:
            return True
        host = urlsplit("//" + (self.headers.get("Host") or "")).hostname
        return host in _LOCAL_NAMES

    def _refuse(self) -> None:
        body = json_response({"error": "read-only: only GET is allowed"}, 405)
        self._send(body, extra=(("Allow", "GET, HEAD"),))

    def _send(
        self, response: Response, with_body: bool = True, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in (*_SECURITY_HEADERS.items(), *response.headers, *extra):
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the page polls every 2 s."""


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: StatusApp) -> None:
        self.app = app
        self.is_local = is_loopback(address[0])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, StatusHandler)


def make_server(
    workspace: Workspace, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> StatusServer:
    """A bound, not yet serving, status server (port 0 picks a free port)."""
    try:
        return StatusServer((host.strip("[]"), port), StatusApp(workspace))
    except OSError as exc:
        raise InputError(
            f"{host}:{port}: cannot listen ({exc.strerror or exc}); pick another --port or --host"
        ) from exc


def url_of(server: StatusServer) -> str:
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    workspace: Workspace,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    out: TextIO | None = None,
) -> None:
    """Serve the status page until Ctrl-C, printing its URL (and a warning off loopback)."""
    out = out or sys.stdout
    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    server = make_server(workspace, host, port)
    with server:
        print(f"freshbatch status page: {url_of(server)} (Ctrl-C to stop)", file=out, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=out)
