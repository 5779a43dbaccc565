import logging
import multiprocessing
import socket
from multiprocessing.connection import Client
from types import SimpleNamespace

import pytest

from fcap.eval import meteor_server, metrics

REFERENCES = {"v1": ["a red circle moves left", "a red circle slides to the left"],
              "v2": ["a blue square moves up over a grey background"]}
FIRST = {"v1": "a red circle moves left", "v2": "a blue square moves down"}
SECOND = {"v1": "a green circle moves right", "v2": "a blue square moves up"}


def plan(*metric_lists):
    return SimpleNamespace(selected=[SimpleNamespace(cfg=SimpleNamespace(
        scoring=SimpleNamespace(metrics=m))) for m in metric_lists])


def _score_in_child(queue):
    queue.put(metrics.meteor(None, predictions=SECOND, references=REFERENCES))


def test_the_shared_process_scores_as_a_stages_own_meteor(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="fcap.eval")
    with meteor_server.shared(plan(("cider",), ("cider", "meteor"))):
        address = meteor_server.os.environ[meteor_server.ADDRESS]
        # requests cut short (a stage killed midway) leave the next one in step
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(address)
        Client(address, family="AF_UNIX",
               authkey=bytes.fromhex(meteor_server.os.environ[meteor_server.KEY])).close()
        first = metrics.meteor(None, predictions=FIRST, references=REFERENCES)
        queue = multiprocessing.get_context("fork").Queue()  # a stage is a forked process
        child = multiprocessing.get_context("fork").Process(target=_score_in_child, args=(queue,))
        child.start()
        second = queue.get(timeout=120)
        child.join()
    assert meteor_server.ADDRESS not in meteor_server.os.environ
    assert "METEOR: the run's shared process scored 2 evaluation(s)" in caplog.text
    assert "starting one for this stage" not in caplog.text
    # a METEOR of its own (as in a SLURM job) gives the same number, after the other request
    own = metrics.meteor(None, predictions=SECOND, references=REFERENCES)
    assert second == own and 0 < own["METEOR"] < 1 and first != second
    # a server that is gone: the stage starts its own METEOR, and says so
    monkeypatch.setenv(meteor_server.ADDRESS, address)
    monkeypatch.setenv(meteor_server.KEY, "00" * 16)
    assert metrics.meteor(None, predictions=SECOND, references=REFERENCES) == own
    assert "METEOR: the run's shared process did not answer" in caplog.text


def test_a_meteor_failure_in_the_server_is_the_stages_error(monkeypatch):
    def broken(scorer, references, predictions):
        raise RuntimeError("METEOR's Java process (java ...) ended with exit code 1")

    monkeypatch.setattr(meteor_server, "meteor_scores", broken)  # the server is forked after this
    with meteor_server.shared(plan(("meteor",))):
        with pytest.raises(RuntimeError, match="RuntimeError: METEOR's Java process .* exit code 1"):
            metrics.meteor(None, predictions=FIRST, references=REFERENCES)


def test_no_server_for_a_launch_that_scores_no_meteor():
    with meteor_server.shared(plan(("cider", "bleu"), ())):
        assert meteor_server.ADDRESS not in meteor_server.os.environ
    assert not meteor_server.wanted(SimpleNamespace(selected=[SimpleNamespace(cfg=None)]))


def test_no_socket_no_server_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    import multiprocessing.util

    monkeypatch.setattr(multiprocessing.util, "get_temp_dir", lambda: str(tmp_path / ("x" * 120)))
    with meteor_server.shared(plan(("meteor",))):
        assert meteor_server.ADDRESS not in meteor_server.os.environ
    assert "METEOR: no shared process" in caplog.text
