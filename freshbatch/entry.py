"""The console script: stop signals are handled before the heavy imports, so Ctrl-C at any
instant of start-up prints one line instead of a traceback."""

from __future__ import annotations

import sys


def main_entry() -> None:
    from freshbatch import stopping

    stopping.install()
    try:
        from freshbatch.cli import main

        code = main()
    except KeyboardInterrupt as exc:
        line, code = stopping.interrupted(exc)
        print(line, file=sys.stderr)
    sys.exit(code)
