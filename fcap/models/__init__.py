"""fcap.models: FrozenCaptioner and its registered parts (see README.md).

Imports each component module explicitly so it registers itself, after checking
that the installed transformers is one fcap runs on (:func:`check_transformers`).
"""
from __future__ import annotations

import re

# The range setup.py declares (a test keeps the two equal). 5.4 is the first release
# with VideoMAEImageProcessorPil (visual.py, tiny.py). fcap runs transformers' own OPT
# forward and generate(); it relies on OPTDecoder passing extra keyword arguments on
# to every decoder layer (the adapters' visual_memory; tests/fcap/models/test_opt_lm.py).
# tests/fcap/models passed on 5.4.0, 5.8.1, 5.12.1, 5.17.0, 5.20.0, 5.23.0 and 5.24.0
# before issue 14; since then on 5.4.0 and 5.24.0 (tests/fcap/models: 97 passed on 5.4.0).
TRANSFORMERS_REQUIREMENT = "transformers>=5.4,<6"
_MIN, _BELOW = (5, 4), (6, 0)


def check_transformers(version: str | None = None) -> None:
    """Raise ImportError naming the installed and the required versions when they differ.

    Reads the installed version from package metadata: importing transformers
    here would add a second to every ``import fcap.models``.
    """
    from importlib import metadata, util

    try:
        version = version or metadata.version("transformers")
    except metadata.PackageNotFoundError:
        raise ImportError(f"fcap.models needs {TRANSFORMERS_REQUIREMENT}, and transformers is not "
                          f"installed: pip install '{TRANSFORMERS_REQUIREMENT}'") from None
    found = re.match(r"(\d+)\.(\d+)", version)
    if found and _MIN <= (int(found[1]), int(found[2])) < _BELOW:
        return
    spec = util.find_spec("transformers")
    where = f" ({spec.origin})" if spec and spec.origin else ""
    raise ImportError(f"fcap.models needs {TRANSFORMERS_REQUIREMENT}, but transformers {version} "
                      f"is installed{where}; install a supported version: "
                      f"pip install '{TRANSFORMERS_REQUIREMENT}'")


check_transformers()

from fcap.models import attention, gates, lm, visual  # noqa: E402,F401  (register components)
from fcap.models.captioner import CaptionerOutput, FrozenCaptioner, build_model  # noqa: E402
from fcap.models.config import AdaptersConfig, DecodingConfig, ModelConfig  # noqa: E402
from fcap.models.visual import ImageSpec, image_spec  # noqa: E402

__all__ = ["AdaptersConfig", "CaptionerOutput", "DecodingConfig", "FrozenCaptioner", "ImageSpec",
           "ModelConfig", "TRANSFORMERS_REQUIREMENT", "build_model", "check_transformers",
           "image_spec"]
