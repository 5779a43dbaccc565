"""METEOR's Java process (pycocoevalcap's ``Meteor``): one for all the evaluations of a
local run, or one per evaluation elsewhere.

pycocoevalcap's METEOR is a Java process that loads its paraphrase table when it
starts: 11-13 s of one core here, while scoring the tiny profile's 500 captions takes
well under a second. Each evaluation started its own, so the tiny Table 1 (15
evaluations) spent about a fifth of its CPU time loading the same table. The local
launcher forks one server process before its stages (:func:`shared`); the
``meteor`` metric of a stage sends it the tokenised captions and gets the scores back
(:func:`scores`). METEOR scores each caption on its own and keeps nothing between
requests, so the numbers are the ones a METEOR of the stage's own gives
(tests/fcap/eval/test_meteor_server.py checks it). The server reads a whole request
before it talks to METEOR, so a stage killed midway leaves the next request in step;
requests are served one at a time. Without a server (a SLURM job, ``fcap-run`` of one
config.yaml under another launcher), or when it does not answer, a stage starts its own
METEOR as before, and says so.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from typing import Any, Iterator

log = logging.getLogger("fcap.eval")

ADDRESS, KEY = "FCAP_METEOR_SERVER", "FCAP_METEOR_KEY"  # what a stage's process reads
ANSWER_S = 600  # a request not answered in this time is scored by the stage's own METEOR


def wanted(plan) -> bool:
    """Whether a selected run of ``plan`` scores METEOR (its ``scoring.metrics``)."""
    return any("meteor" in getattr(getattr(run.cfg, "scoring", None), "metrics", ())
               for run in plan.selected)


@contextlib.contextmanager
def shared(plan) -> Iterator[None]:
    """Serve METEOR to the stages this process runs (and the processes it forks) while
    inside; nothing when no selected run scores METEOR."""
    if not wanted(plan) or ADDRESS in os.environ:
        yield
        return
    key = os.urandom(16)
    try:
        listener = multiprocessing.connection.Listener(family="AF_UNIX", authkey=key)
    except OSError as err:  # e.g. a TMPDIR whose path is too long for a socket
        log.warning("METEOR: no shared process (%s): each evaluation starts its own", err)
        yield
        return
    served = multiprocessing.get_context("fork").Value("i", 0)
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(listener, served, os.getpid()), name="fcap METEOR", daemon=True)
    server.start()
    os.environ[ADDRESS], os.environ[KEY] = listener.address, key.hex()
    try:
        yield
    finally:
        for var in (ADDRESS, KEY):
            os.environ.pop(var, None)
        server.terminate()
        server.join()
        listener.close()
        if served.value:
            log.info("METEOR: the run's shared process scored %d evaluation(s)", served.value)


def scores(references: dict[str, list[str]], predictions: dict[str, list[str]]
           ) -> tuple[float, list[float]]:
    """pycocoevalcap's ``Meteor().compute_score(references, predictions)``: by the run's
    shared process, else by a METEOR started for this call."""
    answer = shared_scores(references, predictions)
    if answer is not None:
        return answer
    scorer = start_meteor()
    try:
        return meteor_scores(scorer, references, predictions)
    finally:
        stop_meteor(scorer)


def shared_scores(references: dict[str, list[str]], predictions: dict[str, list[str]]
                  ) -> tuple[float, list[float]] | None:
    """pycocoevalcap's ``Meteor().compute_score(references, predictions)`` by the run's
    server; None when there is none or it did not answer (the caller scores them itself).
    A METEOR that failed on these captions raises its error here, as the stage's own would."""
    address = os.environ.get(ADDRESS)
    if not address:
        return None
    try:
        with multiprocessing.connection.Client(address, family="AF_UNIX",
                                               authkey=bytes.fromhex(os.environ[KEY])) as conn:
            conn.send((references, predictions))
            if not conn.poll(ANSWER_S):
                raise TimeoutError(f"no answer in {ANSWER_S} s")
            status, value = conn.recv()
    except (OSError, EOFError, KeyError, ValueError, multiprocessing.AuthenticationError) as err:
        log.warning("METEOR: the run's shared process did not answer (%s): starting one for "
                    "this stage", err)
        return None
    if status != "ok":
        raise RuntimeError(value)
    return value


def _serve(listener, served, parent: int) -> None:
    """The server process: one request at a time, METEOR started at the first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the launcher ends this process
    scorer: list[Any] = []

    def end(*_) -> None:
        if scorer:
            stop_meteor(scorer[0])
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    threading.Thread(target=_end_with, args=(parent, end), daemon=True).start()
    while True:
        try:
            conn = listener.accept()
        except (OSError, EOFError, multiprocessing.AuthenticationError):
            continue
        with conn:
            try:
                references, predictions = conn.recv()  # the whole request, before METEOR
            except (OSError, EOFError, ValueError, TypeError):
                continue
            try:
                if not scorer:
                    scorer.append(start_meteor())
                answer = ("ok", meteor_scores(scorer[0], references, predictions))
                served.value += 1
            except Exception as err:  # noqa: BLE001 -- sent to the stage, which raises it
                answer = ("error", f"{type(err).__name__}: {err}")
                if scorer:  # maybe midway through a request: the next one starts a fresh one
                    stop_meteor(scorer.pop())
            with contextlib.suppress(OSError):
                conn.send(answer)


def _end_with(parent: int, end) -> None:
    """End the server when the launcher that started it is gone (killed)."""
    while os.getppid() == parent:
        time.sleep(2)
    end()


def start_meteor():
    """pycocoevalcap's METEOR scorer: its Java process loads the paraphrase table (11-13 s
    of one core) while answering its first request."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def meteor_scores(scorer, references, predictions) -> tuple[float, list[float]]:
    """``scorer.compute_score``; a Java process that died is a RuntimeError saying so."""
    try:
        return scorer.compute_score(references, predictions)
    except (ValueError, OSError) as err:  # a Java process that died answers b'' or breaks the pipe
        if scorer.meteor_p.poll() is None:
            raise
        said = scorer.meteor_p.stderr.read().decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"METEOR's Java process ({' '.join(scorer.meteor_cmd)}) ended with "
                           f"exit code {scorer.meteor_p.returncode} while scoring"
                           + (f": {said[-1]}" if said else "")) from err


def stop_meteor(scorer) -> None:
    """End pycocoevalcap's METEOR Java process now. Its ``__del__`` takes a lock that
    ``compute_score`` keeps when it is interrupted (Ctrl-C, a Java process that died), and
    would then wait for it forever when Python exits: the lock is released first."""
    if scorer.lock.locked():
        scorer.lock.release()
    with scorer.lock:
        with contextlib.suppress(OSError):  # a dead process: unsent lines break the pipe
            scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
