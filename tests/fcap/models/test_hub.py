"""A frozen model given as a hub id: what the preflight's check says, and what loading says."""
import httpx2
import pytest
import torch
from huggingface_hub import constants
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from hf_cache import put_in_hub_cache
from fcap import exit_codes
from fcap.config.schema import build_component
from fcap.models import hub, sources
from registry import MODELS


def asked(error=None):
    """A stand-in for HfApi().model_info: records each call, raises ``error`` if given."""
    calls = []

    def model_info(repo_id, *, revision=None, timeout=None):
        calls.append((repo_id, revision, timeout))
        if error is not None:
            raise error

    model_info.calls = calls
    return model_info


def hub_error(cls, status):
    response = httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/x"))
    return cls(f"{status} Client Error", response=response)


def test_a_cached_model_loads_offline_by_its_hub_id_and_the_check_agrees(hub_cache, monkeypatch):
    lm = build_component(MODELS, {"name": "opt", "source": "tiny"}).build()
    put_in_hub_cache(hub_cache, "fcap-test/tiny-opt", lm.model.name_or_path)
    assert hub.check("fcap-test/tiny-opt", model_info=asked(AssertionError("asked"))) == hub.HubCheck()
    again = build_component(MODELS, {"name": "opt", "source": "fcap-test/tiny-opt"}).build()
    ids = torch.tensor([[2, 50, 60, 70]])
    with torch.no_grad():
        assert torch.equal(again.model(input_ids=ids).logits, lm.model(input_ids=ids).logits)


def test_offline_an_uncached_model_is_a_problem_and_loading_it_a_data_error(hub_cache):
    assert constants.HF_HUB_OFFLINE  # tests/conftest.py
    found = hub.check("fcap-test/absent", model_info=asked(AssertionError("asked")))
    assert found.note is None and found.problem.endswith(
        f"fcap-test/absent is not in the Hugging Face cache ({hub_cache}) with HF_HUB_OFFLINE "
        f"set: download it where there is network, into the same cache (hf download "
        f"fcap-test/absent), or give a local folder")
    with pytest.raises(sources.ModelSourceError, match="^model.lm.source: cannot load "
                                                       "'fcap-test/absent': ") as err:
        build_component(MODELS, {"name": "opt", "source": "fcap-test/absent"}).build()
    assert exit_codes.code_for(err.value) == exit_codes.DATA


def test_online_the_hub_is_asked_once_and_says_what_loading_would_do(hub_cache, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    there = asked()
    found = hub.check("fcap-test/on-hub", revision="v1", model_info=there)
    assert there.calls == [("fcap-test/on-hub", "v1", hub.TIMEOUT_S)] and found.problem is None
    assert found.note.startswith(f"fcap-test/on-hub@v1 is not in the Hugging Face cache "
                                 f"({hub_cache}): the first stage that loads it downloads it")
    assert found.note.endswith("(compute nodes without network: run hf download "
                               "fcap-test/on-hub --revision v1 first)")
    gone = hub.check("fcap-test/typo", model_info=asked(hub_error(RepositoryNotFoundError, 404)))
    assert gone.note is None and "and no model 'fcap-test/typo' on the Hugging Face hub" in gone.problem
    gated = hub.check("fcap-test/gated", model_info=asked(hub_error(GatedRepoError, 403)))
    assert gated.problem.startswith("fcap-test/gated is gated on the Hugging Face hub: accept")
    down = hub.check("fcap-test/x", model_info=asked(httpx2.ConnectError("Name or service not known")))
    assert down.problem is None and ("the hub could not be asked (ConnectError: Name or service "
                                     "not known); the stage that loads it tries to download it. Without network: download it "
                                     "where there is network") in down.note
    assert hub.check("not a hub id").problem.startswith("'not a hub id' is not a folder here")


def test_what_counts_as_a_hub_id(tmp_path):
    assert sources.is_hub_id("facebook/opt-1.3b") and sources.is_hub_id("gpt2")
    assert sources.is_hub_id("checkpoints/tsf")  # a relative folder that is not there reads as one
    (tmp_path / "tsf").mkdir()
    for not_hub in ("tiny", "tiny-pretrained", str(tmp_path / "tsf"), str(tmp_path / "gone"),
                    "./tsf", "~/tsf", "a/b/c"):
        assert not sources.is_hub_id(not_hub), not_hub
