"""Whether a frozen model given as a hub id (``facebook/opt-1.3b``) can be loaded, asked
before anything runs or is queued (fcap/experiment/preflight.py).

``from_pretrained`` finds a hub id in the local Hugging Face cache, or downloads it. Asked
only when a stage starts, a typo in ``model.lm.source`` or a compute node without network
failed pretraining after the label array had run (at paper scale, days). Here:

- in the cache (its ``config.json`` at the revision): loads;
- offline (``HF_HUB_OFFLINE=1``) and not in the cache: cannot load, a problem;
- online and not in the cache: the hub is asked once (:data:`TIMEOUT_S`). A repository
  it does not have, or one that is gated for this login, is a problem; one it has is a
  note (the first stage that loads it downloads it: on compute nodes without network,
  download it first); a hub that cannot be reached is a note too (the stage tries again).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

TIMEOUT_S = 10.0  # one request to the hub per uncached model, before anything runs


@dataclass(frozen=True)
class HubCheck:
    """What loading ``repo_id`` would do: ``problem`` (it cannot load) or ``note`` (it
    loads, by downloading or unverified); both None when it is in the local cache."""

    problem: Optional[str] = None
    note: Optional[str] = None


def cached_folder(repo_id: str, *, revision: Optional[str] = None) -> Optional[str]:
    """The snapshot folder of ``repo_id`` at ``revision`` in the local Hugging Face cache
    (its ``config.json`` is there), or None. A string that is no hub id raises
    huggingface_hub's HFValidationError (a ValueError)."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return os.path.dirname(cached) if isinstance(cached, str) else None


def check(repo_id: str, *, revision: Optional[str] = None,
          model_info: Optional[Callable[..., Any]] = None) -> HubCheck:
    """Whether ``repo_id`` at ``revision`` (the hub's default: main) loads here.

    ``model_info`` asks the hub (default ``HfApi().model_info``); it is called only when
    the model is not cached and the hub is not offline.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HFValidationError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    at = f"{repo_id}@{revision}" if revision else repo_id
    try:
        if cached_folder(repo_id, revision=revision) is not None:
            return HubCheck()
    except HFValidationError as err:  # "a b", "x/y/z": neither a folder nor a hub id
        return HubCheck(problem=f"{repo_id!r} is not a folder here and not a hub id ({err})")
    cache = constants.HF_HUB_CACHE
    download = f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")
    fetch = f"download it where there is network, into the same cache ({download}), or give a local folder"
    if constants.HF_HUB_OFFLINE:
        return HubCheck(problem=f"no folder {os.path.abspath(repo_id)}, and {at} is not in the "
                                f"Hugging Face cache ({cache}) with HF_HUB_OFFLINE set: {fetch}")
    if model_info is None:
        from huggingface_hub import HfApi

        model_info = HfApi().model_info
    try:
        model_info(repo_id, revision=revision, timeout=TIMEOUT_S)
    except GatedRepoError:
        return HubCheck(problem=f"{at} is gated on the Hugging Face hub: accept its terms on "
                                f"its page and log in (hf auth login), or give a local folder")
    except RepositoryNotFoundError:
        return HubCheck(problem=f"no folder {os.path.abspath(repo_id)} and no model {repo_id!r} "
                                f"on the Hugging Face hub (a private one needs hf auth login)")
    except RevisionNotFoundError:
        return HubCheck(problem=f"the Hugging Face hub has {repo_id} but no revision "
                                f"{revision!r}")
    except Exception as err:  # no network, a proxy, a timeout: the stage tries again
        return HubCheck(note=f"{at} is not in the Hugging Face cache ({cache}) and the hub "
                             f"could not be asked ({type(err).__name__}: {err}); the stage "
                             f"that loads it tries to download it. Without network: {fetch}")
    return HubCheck(note=f"{at} is not in the Hugging Face cache ({cache}): the first stage "
                         f"that loads it downloads it (compute nodes without network: run "
                         f"{download} first)")
