"""FrozenCaptioner (Sec. 4): frozen LM + frozen video encoder + trainable gated adapters.

Contract (docs/CONTRACTS.md "Model"): ``prepare_text``, ``forward(...) -> .loss,
.logits``, ``generate(...) -> list[str]``, ``trainable_parameters()``,
``save_adapters(dir)`` / ``load_adapters(dir)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcap.config.schema import to_dict
from fcap.models import adapter_io, generation, sources
from fcap.models.adapter import AdaptedLayer, Adapter, gate_values
from fcap.models.config import DecodingConfig, ModelConfig
from registry import MODELS


@dataclass
class CaptionerOutput:
    loss: torch.Tensor | None  # mean token cross-entropy over labels != -100 (nats)
    logits: torch.Tensor  # (b, n, vocab)


@MODELS.register("frozen_captioner", config=ModelConfig)
class FrozenCaptioner(nn.Module):
    """Frozen ``lm`` conditioned on frozen ``visual`` features through adapters."""

    role = "captioner"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sources.prepare(cfg.lm.cfg, cfg.visual.cfg)  # tiny-pretrained ones: longest build first
        self.lm = cfg.lm.build()
        self.visual = cfg.visual.build()
        for key, module, role in (("model.lm", self.lm, "lm"), ("model.visual", self.visual, "visual")):
            if getattr(module, "role", None) != role:
                raise ValueError(f"{key}: model '{getattr(cfg, key.split('.')[1]).name}' has role "
                                 f"{getattr(module, 'role', None)!r}, expected {role!r}")
            module.requires_grad_(False)
            module.eval()
        layers = list(cfg.adapters.layers)
        n = len(self.lm.layers)
        if layers[-1] >= n:
            raise ValueError(f"model.adapters.layers: index {layers[-1]} out of range; the LM "
                             f"{self.lm.source!r} has {n} layers (0..{n - 1})")
        for i in layers:  # explicit wrapping: the original layer lives on inside AdaptedLayer
            adapter = Adapter(dim=self.lm.hidden_size, visual_dim=self.visual.hidden_size,
                              attention=cfg.adapters.attention, gate=cfg.adapters.gate,
                              ffn_mult=cfg.adapters.ffn_mult)
            self.lm.layers[i] = AdaptedLayer(self.lm.layers[i], adapter, index=i)
        # Nothing below the first adapter requires grad (frozen weights, token ids in), so
        # autograd records no graph there and backprop stops at the first adapter (Sec. 4)
        # without any no_grad block: bench/train_step.py measures it.
        self.adapter_layers = tuple(layers)

    # -- frozen parts -----------------------------------------------------------------
    def train(self, mode: bool = True) -> "FrozenCaptioner":
        super().train(mode)
        self.lm.eval()  # frozen means frozen: no dropout in the LM or encoder, ever
        self.visual.eval()
        for adapter in self.adapters().values():
            adapter.train(mode)
        return self

    def adapters(self) -> dict[int, Adapter]:
        return {i: self.lm.layers[i].adapter for i in self.adapter_layers}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The adapters' parameters: the only ones the optimizer sees."""
        return [p for a in self.adapters().values() for p in a.parameters()]

    def scalars(self) -> dict[str, float]:
        """Numbers to log while training, by tag: each gate's mean |tanh(g)| (Sec. 4; Figure 5)."""
        return {f"gates/{k}": float(v.abs().mean()) for k, v in gate_values(self.adapters()).items()}

    @property
    def device(self) -> torch.device:
        return self.lm.model.lm_head.weight.device

    @property
    def image_spec(self):
        """:class:`fcap.models.visual.ImageSpec`: image size, mean/std, checkpoint frames."""
        return self.visual.spec

    def visual_identity(self) -> dict[str, str]:
        """Identity of the visual encoder (feature-cache keys)."""
        return self.visual.identity()

    @torch.no_grad()
    def encode_visual(self, pixel_values: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """pixel_values: (b, t, 3, H, W) normalised -> features (b, t, s, d_v)."""
        return self.visual.encode(pixel_values.to(self.device), frame_mask)

    # -- text -------------------------------------------------------------------------
    def prepare_text(self, captions: list[str], max_length: int) -> dict[str, torch.Tensor]:
        """Tokenise as OPT does: ``BOS caption EOS``, right-padded to the longest (<= max_length).

        labels are -100 on padding and on the BOS: BOS is the given start, never a
        prediction target (the shifted loss would ignore position 0 anyway). EOS is a
        target so the model learns to stop. Captions longer than max_length - 2
        tokens are truncated (EOS is kept).
        """
        if max_length < 3:
            raise ValueError(f"max_length: must be >= 3 (BOS, a token, EOS), got {max_length}")
        tok = self.lm.tokenizer
        rows = [[self.lm.bos_token_id] + tok(c, add_special_tokens=False)["input_ids"][: max_length - 2]
                + [self.lm.eos_token_id] for c in captions]
        n = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), n), self.lm.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
            attention_mask[i, : len(r)] = 1
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        labels[:, 0] = -100
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def decode(self, token_ids: torch.Tensor) -> list[str]:
        return [s.strip() for s in self.lm.tokenizer.batch_decode(token_ids, skip_special_tokens=True)]

    # -- forward ----------------------------------------------------------------------
    def visual_memories(self, visual_features: torch.Tensor, frame_mask: torch.Tensor | None, *,
                        precompute: bool = True) -> dict[int, Any]:
        """Each adapter's video-side state (keys/values, latents), computed once per sample.

        The LM's ``visual_memory=`` input. ``precompute=False`` hands the adapters the raw
        features instead, so they recompute the video side at every call.
        """
        return {i: a.prepare(visual_features, frame_mask, precompute=precompute)
                for i, a in self.adapters().items()}

    def _features(self, pixel_values, visual_features, frame_mask):
        if (pixel_values is None) == (visual_features is None):
            raise ValueError("give exactly one of pixel_values (b, t, 3, H, W) or "
                             "visual_features (b, t, s, d_v)")
        if frame_mask is not None:
            frame_mask = frame_mask.to(self.device)
        if visual_features is None:
            visual_features = self.encode_visual(pixel_values, frame_mask)
        return visual_features.to(self.device), frame_mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                visual_features: torch.Tensor | None = None,
                frame_mask: torch.Tensor | None = None) -> CaptionerOutput:
        """Teacher-forced pass; every text position sees all (real) frames."""
        feats, frame_mask = self._features(pixel_values, visual_features, frame_mask)
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        logits = self.lm.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                               visual_memory=self.visual_memories(feats, frame_mask)).logits
        loss = None
        if labels is not None:
            labels = labels.to(self.device)
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1), ignore_index=-100)
        return CaptionerOutput(loss=loss, logits=logits)

    # -- generation -------------------------------------------------------------------
    @torch.no_grad()
    def generate_ids(self, *, pixel_values: torch.Tensor | None = None,
                     visual_features: torch.Tensor | None = None,
                     frame_mask: torch.Tensor | None = None,
                     decoding: DecodingConfig | None = None, reuse_visual: bool = True) -> torch.Tensor:
        """New token ids (b, <= max_new_tokens), EOS-terminated rows padded with pad.

        transformers ``generate()`` with the visual memory computed once and passed as a
        model input (fcap/models/generation.py). ``reuse_visual=False`` recomputes the
        visual keys/values at every step (tests and bench/generation.py; same output, slower).
        """
        feats, frame_mask = self._features(pixel_values, visual_features, frame_mask)
        memory = self.visual_memories(feats, frame_mask, precompute=reuse_visual)
        return generation.generate_ids(self.lm, memory, decoding or DecodingConfig(),
                                       batch=feats.shape[0], device=feats.device)

    def generate(self, *, pixel_values: torch.Tensor | None = None,
                 visual_features: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None,
                 decoding: DecodingConfig | None = None, reuse_visual: bool = True) -> list[str]:
        """Captions, one per video (paper: greedy, no beam search)."""
        return self.decode(self.generate_ids(pixel_values=pixel_values, visual_features=visual_features,
                                             frame_mask=frame_mask, decoding=decoding,
                                             reuse_visual=reuse_visual))

    # -- adapters on disk -------------------------------------------------------------
    def save_adapters(self, directory: str | Path) -> Path:
        """Write ``adapters.safetensors`` + ``manifest.json`` (frozen sources and hashes)."""
        return adapter_io.save_adapters(directory, self.adapters(), self._manifest())

    def load_adapters(self, directory: str | Path) -> None:
        """Load adapters saved by :meth:`save_adapters`; refuses a different base model."""
        adapter_io.load_adapters(directory, self.adapters(), self._manifest())

    def _manifest(self) -> dict:
        return adapter_io.build_manifest(lm=self.lm.identity(), visual=self.visual.identity(),
                                         adapters=to_dict(self.cfg.adapters))


def build_model(cfg: ModelConfig) -> FrozenCaptioner:
    """The captioner described by a validated ``model:`` config block."""
    return FrozenCaptioner(cfg)
