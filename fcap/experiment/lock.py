"""One process at a time per run directory: an exclusive ``flock`` on ``<run_dir>/.fcap-lock``.

Whoever runs a stage (the local launcher; rank 0 of a SLURM job, which owns the
markers) holds the lock from before it clears the old markers until it has
written DONE.json or FAILED.json, so two ``fcap-run`` of the same stage can
never both train it: the second raises :class:`RunBusyError`, "stage X is being
run by pid P on host H since T". The lock file holds that line's facts (host,
pid, start time) while it is held and is emptied on a clean release.

The kernel drops a ``flock`` when its process dies, so a lock left by a killed
process is free again; finding the dead holder's facts still in the file is
how it is detected, and the new holder logs that it took it over.

An array stage's elements (one shard each, all in the same run directory) hold
the stage lock *shared* plus ``.fcap-lock.<i>`` exclusively: elements run side
by side, the same element twice does not, and a whole-stage run (or moving the
stage's outputs aside) waits for none of them. The lock is re-entrant within a
process: a launcher holding it may call code that takes it again.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

LOCK = ".fcap-lock"
RETRY_S = 0.1
log = logging.getLogger("fcap.launcher")
_held: set[tuple[str, int | None]] = set()  # (run dir, element) this process holds


class RunBusyError(RuntimeError):
    """Another live process holds the run directory's lock."""

    def __init__(self, what: str, holder: dict | None) -> None:
        self.holder = holder
        super().__init__(f"{what} is being run by {describe(holder)}; wait for it to finish, or "
                         "stop that process")


def describe(holder: dict | None) -> str:
    """'pid P on host H since T' (plus the SLURM job, when there is one)."""
    if not holder:
        return "another process (it has not written its pid yet)"
    text = (f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('since')}")
    if holder.get("slurm_job"):
        text += f" (SLURM job {holder['slurm_job']})"
    return text


def forget_held() -> None:
    """In a forked child: the locks the parent holds are not this process's to nest in."""
    _held.clear()


def lock_path(run_dir: str | os.PathLike, element: int | None = None) -> Path:
    name = LOCK if element is None else f"{LOCK}.{int(element)}"
    return Path(run_dir) / name


class RunLock:
    """``with RunLock(run_dir, what="stage a/train"):`` hold the run directory's lock.

    ``element`` (an array index) takes the shared stage lock and that element's
    own lock. Held by someone else, it retries for ``wait_s`` seconds, then
    raises :class:`RunBusyError`. The run directory must exist (claim it first).
    """

    def __init__(self, run_dir: str | os.PathLike, *, what: str, element: int | None = None,
                 wait_s: float = 1.0) -> None:
        self.run_dir, self.what, self.element, self.wait_s = Path(run_dir), what, element, wait_s
        self._key = (str(self.run_dir.resolve()), element)
        self._fds: list[int] = []
        self._nested = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        if self._key in _held:
            self._nested = True
            return
        deadline = time.monotonic() + self.wait_s
        if self.element is None:
            self._fds.append(self._take(lock_path(self.run_dir), fcntl.LOCK_EX, deadline))
        else:
            self._fds.append(self._take(lock_path(self.run_dir), fcntl.LOCK_SH, deadline))
            try:
                self._fds.append(self._take(lock_path(self.run_dir, self.element), fcntl.LOCK_EX,
                                            deadline))
            except BaseException:
                self._unlock()
                raise
        self._record(self._fds[-1])
        _held.add(self._key)

    def release(self) -> None:
        if self._nested:
            self._nested = False
            return
        if not self._fds:
            return
        os.ftruncate(self._fds[-1], 0)  # an empty file: released cleanly, nobody to take over
        self._unlock()
        _held.discard(self._key)

    # -- pieces ------------------------------------------------------------------
    def _take(self, path: Path, mode: int, deadline: float) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunBusyError(self.what, holder(self.run_dir)) from None
                time.sleep(RETRY_S)

    def _record(self, fd: int) -> None:
        previous = _read(fd)
        if previous:
            log.warning("%s: taking over the lock left by %s: that process is gone",
                        self.what, describe(previous))
        facts = {"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                 "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if os.environ.get("SLURM_JOB_ID"):
            facts["slurm_job"] = os.environ["SLURM_JOB_ID"]
        data = (json.dumps(facts) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def _unlock(self) -> None:
        for fd in reversed(self._fds):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds = []


def _read(fd: int) -> dict | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def holder(run_dir: str | os.PathLike) -> dict | None:
    """Facts of the live process holding ``run_dir``'s lock or one element's lock ({} when
    it has not written them yet); None when nobody holds it."""
    run_dir = Path(run_dir)
    for path in [lock_path(run_dir), *sorted(run_dir.glob(f"{LOCK}.*"))]:
        busy, facts = _probe(path)
        if busy:
            return facts or {}
    return None


def _probe(path: Path) -> tuple[bool, dict | None]:
    """(held by someone, their facts); a file that is not there is not held."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)
