"""Ask a running training stage to checkpoint now (SLURM preemption, time limits).

``request_checkpoint()`` only sets a flag, so it is safe inside a signal
handler. The trainer reads the flag after every optimizer step and agrees on it
across ranks (a max all-reduce), so one rank receiving the signal is enough:
every rank saves the same step, then the stage stops with
:class:`TrainingInterrupted` (or carries on with ``then_stop=False``).
"""
from __future__ import annotations

import signal
import threading
from pathlib import Path

_requested = threading.Event()
_stop_after_save = threading.Event()


class TrainingInterrupted(Exception):
    """The stage stopped early with a checkpoint saved; rerunning it resumes there."""

    def __init__(self, step: int, checkpoint: Path | None, reason: str) -> None:
        self.step = step
        self.checkpoint = checkpoint
        self.reason = reason
        super().__init__(f"training stopped at step {step} ({reason}); checkpoint: {checkpoint}")


def request_checkpoint(*, then_stop: bool = True) -> None:
    """Make every rank save a checkpoint after the current step (then stop, by default)."""
    if then_stop:
        _stop_after_save.set()
    _requested.set()


def pending() -> tuple[bool, bool]:
    """(checkpoint requested, stop afterwards) on this rank."""
    return _requested.is_set(), _stop_after_save.is_set()


def clear() -> None:
    _requested.clear()
    _stop_after_save.clear()


def install_signal_handler(signum: int = signal.SIGUSR1, *, then_stop: bool = True) -> None:
    """Call :func:`request_checkpoint` when ``signum`` arrives (main thread only)."""
    def handler(_signum, _frame) -> None:
        request_checkpoint(then_stop=then_stop)
    signal.signal(signum, handler)
