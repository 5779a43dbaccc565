"""``OPTForCausalLM`` that takes the adapters' visual memory as a model input.

Imported when an OPT LM is built, not with ``fcap.models``: loading transformers'
modeling code costs seconds that config validation and the CLI do not need.
"""
from __future__ import annotations

from typing import Any

import torch
from transformers import OPTForCausalLM


class VisualOPTForCausalLM(OPTForCausalLM):
    """``OPTForCausalLM`` with ``visual_memory`` as a declared model input.

    The forward is the stock one: transformers 5.x passes the extra keyword
    arguments of ``OPTForCausalLM.forward`` through ``OPTDecoder`` to each decoder
    layer, so ``visual_memory`` reaches the :class:`AdaptedLayer` wrappers without
    any copied decoder code. Declaring it in the signature is what lets
    ``generate()`` accept it as a model input (it refuses unknown keywords) and
    pass the same object, computed once, to every step. Layers without an adapter
    pass it on to transformers' attention function, which ignores unknown keywords.
    """

    def forward(self, input_ids: torch.LongTensor | None = None,
                attention_mask: torch.Tensor | None = None,
                position_ids: torch.LongTensor | None = None,
                logits_to_keep: int | torch.Tensor = 0,
                visual_memory: Any = None, **kwargs: Any):
        """``visual_memory``: ``{layer index: adapter memory}`` (FrozenCaptioner); rest as OPT.

        ``generate()`` reads ``attention_mask``, ``position_ids`` and ``logits_to_keep``
        from this signature, so they are named here; everything else (the KV cache,
        whatever its keyword in this release) passes through ``kwargs`` unchanged.
        """
        if visual_memory is not None:
            kwargs["visual_memory"] = visual_memory
        return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids, logits_to_keep=logits_to_keep, **kwargs)
