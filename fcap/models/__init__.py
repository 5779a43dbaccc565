"""fcap.models: FrozenCaptioner and its registered parts (see README.md).

Imports each component module explicitly so it registers itself.
"""
from fcap.models import attention, gates, lm, visual  # noqa: F401  (register components)
from fcap.models.captioner import CaptionerOutput, FrozenCaptioner, build_model
from fcap.models.config import AdaptersConfig, ModelConfig
from fcap.models.generation import DecodingConfig
from fcap.models.visual import ImageSpec, image_spec

__all__ = ["AdaptersConfig", "CaptionerOutput", "DecodingConfig", "FrozenCaptioner", "ImageSpec",
           "ModelConfig", "build_model", "image_spec"]
