"""Progress bars and log lines of a run, on stderr."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time


class Console:
    """Progress bars and log lines; silent with ``quiet``, JSON lines with ``json_logs``."""

    def __init__(self, quiet: bool = False, json_logs: bool = False):
        self.quiet = quiet
        self.json_logs = json_logs
        self._rich = None
        if not quiet and not json_logs:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(stderr=True)

    def log(self, message: str, **data):
        if self.quiet:
            return
        if self.json_logs:
            print(json.dumps({"time": time.time(), "message": message, **data}, default=str), file=sys.stderr)
        else:
            self._rich.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)

    @contextlib.contextmanager
    def progress(self, total: int | None, description: str):
        if self._rich is None or not sys.stderr.isatty() and os.environ.get("NASCORE_PROGRESS") != "1":
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self._rich, transient=True) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)
