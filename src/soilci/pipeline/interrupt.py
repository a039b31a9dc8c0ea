"""SIGINT and SIGTERM during a run: stop the running stage, record where, exit 130 or 143.

While a stage's command runs (or an image builds), a signal raises ``Interrupted`` at once: the runner
then stops its child (process group or container, with a grace period) and the run records the stage
as interrupted. Anywhere else (DVC writing dvc.lock or its cache, pull, push, run.json) the signal is
held until that step ends, so no DVC file is left half-written; a second signal does not wait.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Self

from soil_contracts.errors import Interrupted

# SIGHUP: the terminal the run was started from closed (an ssh session dropped).
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
class InterruptGuard:
    """Signal handlers for one run; a context manager that restores the previous ones on exit.

    Only the main thread can install handlers; elsewhere (a test calling the driver from a thread) the
    guard does nothing and signals keep their previous meaning.
    """

    def __init__(self) -> None:
        self.pending: int | None = None  # the first signal received; it decides the exit code
        self._interruptible = 0
        self.closing = False  # set while an interrupted run records itself: further signals wait for that
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Self:
        with contextlib.suppress(ValueError):  # not the main thread
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        first = self.pending is None
        if first:
            self.pending = signum
        if self.closing:
            return
        if self._interruptible or not first:
            raise Interrupted(self.pending)
        print(f"soilci pipeline: {signal.Signals(signum).name} received; stopping after this step "
              "(send it again to stop now)", file=sys.stderr, flush=True)

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal arrived while it was held."""
        if self.pending is not None:
            raise Interrupted(self.pending)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block a signal may cut short at once (a stage's command, an image build)."""
        self.check()
        self._interruptible += 1
        try:
            yield
        finally:
            self._interruptible -= 1
