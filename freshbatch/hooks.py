"""Hooks: user commands run on chosen run events, off the workers' path.

Each chosen event is queued for one dedicated thread that runs the hook commands in event
order, the event as JSON on stdin, each bounded by its timeout. A failing or hanging hook is
logged as a `hook:failed` event and never stops or slows the run. Payloads carry the event
only, with anything that looks like a secret replaced; hooks do not inherit the API key.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from freshbatch.errors import InputError

EVENTS = (
    "run:start",
    "run:warning",
    "run:end",
    "batch:start",
    "batch:attempt",
    "batch:invalid",
    "batch:staged",
    "batch:merged",
    "batch:failed",
    "ratelimit:pause",
    "ratelimit:resume",
    "hook:failed",
)
ALL = "*"  # every event but hook:failed (a failing hook must not feed itself)
DEFAULT_TIMEOUT = 30.0
_HOOK_KEYS = {"on", "run", "shell", "timeout"}
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
_SECRET_SHAPE = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
_HIDDEN_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
REDACTED = "[redacted]"
Log = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Hook:
    """A command run on some events: argv (or one shell line), with a timeout in seconds."""

    on: tuple[str, ...]
    command: tuple[str, ...]
    shell: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def wants(self, event: str) -> bool:
        return event in self.on or (ALL in self.on and not event.startswith("hook:"))

    @property
    def shown(self) -> str:
        return str(redact(" ".join(self.command)))


def parse_hooks(raw: Any, where: str) -> tuple[Hook, ...]:
    """`hooks:` of freshbatch.yaml or course.yaml: a list of {on, run, shell, timeout}."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{where}: hooks must be a list of {{on: EVENTS, run: COMMAND}}")
    return tuple(_parse_hook(item, f"{where}: hooks[{index}]") for index, item in enumerate(raw))


def _parse_hook(raw: Any, where: str) -> Hook:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping with on and run")
    unknown = sorted(set(map(str, raw)) - _HOOK_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key '{unknown[0]}' (allowed: on, run, shell, timeout)")
    on = raw.get("on")
    events = [on] if isinstance(on, str) else on
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise InputError(f"{where}: on must name one event or a list of events")
    for event in events:
        if event != ALL and event not in EVENTS:
            raise InputError(f"{where}: unknown event '{event}' (events: *, {', '.join(EVENTS)})")
    shell = raw.get("shell", False)
    if not isinstance(shell, bool):
        raise InputError(f"{where}: shell must be true or false")
    command = _command(raw.get("run"), shell, where)
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InputError(f"{where}: timeout must be a positive number of seconds")
    return Hook(tuple(events), command, shell, float(timeout))


def _command(run: Any, shell: bool, where: str) -> tuple[str, ...]:
    if isinstance(run, str) and run.strip():
        if shell:
            return (run,)
        try:
            return tuple(shlex.split(run))
        except ValueError as exc:
            raise InputError(f"{where}: run: {exc}") from None
    if isinstance(run, list) and run and all(isinstance(a, str) for a in run):
        if shell and len(run) != 1:
            raise InputError(f"{where}: with shell: true, run is one command line")
        return tuple(run)
    raise InputError(f"{where}: run must be a command line or a list of arguments")


def notify_hook(command: str) -> Hook:
    """`--notify CMD`: CMD (split like a shell would, run without one) on run:end."""
    return _parse_hook({"on": "run:end", "run": command}, "--notify")


def _secret_values() -> list[str]:
    return [
        value for name, value in os.environ.items() if _SECRET_NAME.search(name) and len(value) >= 8
    ]


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """The value with every secret-looking string (an env secret's value, an sk-… key)
    replaced, inside lists and mappings too."""
    secrets = _secret_values() if secrets is None else secrets
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return _SECRET_SHAPE.sub(REDACTED, value)
    if isinstance(value, dict):
        return {str(k): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


def payload(course: str, event: str, data: dict[str, Any]) -> bytes:
    """What a hook reads on stdin: the event, its course and its fields, secrets removed."""
    doc = redact({"event": event, "course": course, **data})
    return (json.dumps(doc, ensure_ascii=False) + "\n").encode("utf-8")


def hook_env(event: str, course: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HIDDEN_ENV}
    return {**env, "FRESHBATCH_EVENT": event, "FRESHBATCH_COURSE": course}


def run_hook(hook: Hook, stdin: bytes, env: dict[str, str], cwd: str) -> str | None:
    """Run one hook to its end or its timeout; None if it succeeded, else why not."""
    try:
        process = subprocess.Popen(
            list(hook.command) if not hook.shell else hook.command[0],
            shell=hook.shell,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a timeout ends the hook's children too
        )
    except OSError as exc:
        return f"cannot start: {exc.strerror or exc}"
    try:
        _, err = process.communicate(stdin, timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        return f"timed out after {hook.timeout:g}s"
    if process.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        detail = f": {last[0][:200]}" if last[0] else ""
        return f"exit status {process.returncode}{detail}"
    return None


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.communicate()


class HookRunner:
    """A progress listener that queues chosen events for one thread running the hooks."""

    def __init__(self, hooks: tuple[Hook, ...], course: str, cwd: str, log: Log) -> None:
        self.hooks = hooks
        self.course = course
        self.cwd = cwd
        self.log = log
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def on_event(self, name: str, data: dict[str, Any]) -> None:
        """Called on the workers' path: only queues (never blocks, never raises)."""
        if not any(h.wants(name) for h in self.hooks):
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="hooks", daemon=True)
            self._thread.start()
        self._queue.put((name, dict(data)))

    def close(self) -> None:
        """Wait for the queued hooks (each bounded by its timeout), e.g. run:end's."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            name, data = item
            stdin = payload(self.course, name, data)
            env = hook_env(name, self.course)
            for hook in self.hooks:
                if hook.wants(name):
                    reason = run_hook(hook, stdin, env, self.cwd)
                    if reason is not None:
                        self._failed(hook, name, reason)

    def _failed(self, hook: Hook, event: str, reason: str) -> None:
        if event == "hook:failed":
            return  # a failing hook:failed hook must not feed itself
        with contextlib.suppress(Exception):  # a log that fails must not end the hook thread
            self.log("hook:failed", {"hook": hook.shown, "on": event, "reason": redact(reason)})
