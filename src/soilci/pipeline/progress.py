"""What the driver shows while it runs: one line per finished step, and a live spinner in a terminal."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator


class Progress:
    """One line per finished step; in a terminal, a live spinner with elapsed time and the last log line."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[Callable[[str], None]]:
        """Show ``label`` while the block runs; yields the callback that takes the step's log lines."""
        started = time.monotonic()
        last = {"line": ""}

        def render() -> str:
            tail = last["line"][-90:]
            return f"[bold]{label}[/] {time.monotonic() - started:5.1f}s  [dim]{_escape(tail)}[/]"

        if not self.console.is_terminal:  # CI logs: a start line, then the done line
            self.console.print(f"  [dim]{_escape(label)} ...[/]")
            yield lambda line: None
            return
        with self.console.status(render(), spinner="dots") as status:
            stop = threading.Event()

            def tick() -> None:
                while not stop.wait(0.5):
                    status.update(render())

            thread = threading.Thread(target=tick, daemon=True)
            thread.start()

            def on_line(line: str) -> None:
                last["line"] = line

            try:
                yield on_line
            finally:
                stop.set()
                thread.join()

    def done(self, name: str, message: str, style: str = "green", seconds: float | None = None) -> None:
        took = f" [dim]({seconds:.1f}s)[/]" if seconds is not None else ""
        self.console.print(f"  [{style}]{name:<9}[/] {_escape(message)}{took}", soft_wrap=True)

    def info(self, message: str) -> None:
        self.console.print(_escape(message), soft_wrap=True)  # CI logs keep long lines whole


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
