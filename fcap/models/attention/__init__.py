"""Cross-attention from text to video, registered in ``CROSS_ATTENTIONS``."""
from fcap.models.attention import full, perceiver, separable  # noqa: F401  (registers)
from fcap.models.attention.base import CrossAttention, KeyValueAttention, real_frames

__all__ = ["CrossAttention", "KeyValueAttention", "real_frames"]
