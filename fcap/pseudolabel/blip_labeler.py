"""The BLIP pseudolabeller: captions video frames as pseudolabels (Sec. 3.1; ``MODELS["blip"]``).

Role ``labeler``: ``caption(frames, seeds=..., sampling=...)`` maps uint8
frames ``(b, H, W, 3)`` to ``captions_per_frame`` strings each; ``id``,
``weights_hash`` (:func:`fcap.models.sources.weights_hash`), ``dtype`` and
``device`` describe it for the shard manifest. (Role ``captioner`` is the
paper's video captioner, :class:`fcap.models.captioner.FrozenCaptioner`.)

Nucleus sampling is made per-frame deterministic: each row of a batch draws
its randomness from its own generator seeded by the clip, so a caption does not
depend on which clips shared its batch, on sharding or on a resume. Sampling
uses the Gumbel-max trick: argmax(log p / T + Gumbel noise) over the top-p
tokens is an exact sample of the nucleus distribution, so the row noise can be
added in a logits processor and ``generate`` runs its greedy loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import torch

from fcap.models import sources
from fcap.models.blip import caption_images
from fcap.models.tiny_blip import TinyBlip, build_tiny_blip
from fcap.pseudolabel.config import SamplingConfig
from registry import MODELS

DEFAULT_SOURCE = "Salesforce/blip-image-captioning-large"


@dataclass(frozen=True)
class BlipLabelerConfig:
    """Where the BLIP checkpoint comes from and how it runs."""

    source: str = DEFAULT_SOURCE  # hub id, local save_pretrained folder, "tiny" (random) or "tiny-pretrained" (cached)
    revision: Optional[str] = None  # hub revision (commit/tag) for provenance
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: fp16 on GPU, fp32 on CPU
    # torch intra-op threads when on CPU (process-wide); None: torch's default. On a
    # busy 2-core VM, 2 threads made tiny-BLIP captioning 15-30x slower than 1.
    cpu_threads: Optional[int] = None

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("source must be a hub id, a local folder or 'tiny'")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1, got {self.cpu_threads}")


class NucleusNoise:
    """Logits processor: temperature, top-p mask, then per-row Gumbel noise.

    ``seeds[r]`` seeds row ``r``; step ``t`` of a row always uses the row
    generator's ``t``-th draw, whatever the batch.
    """

    def __init__(self, *, seeds: Sequence[int], top_p: float, temperature: float) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.top_p = top_p
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"NucleusNoise: {scores.shape[0]} rows but {len(self.generators)} seeds")
        logp = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        sorted_logp, order = logp.sort(dim=-1, descending=True)
        probs = sorted_logp.exp()
        outside = (probs.cumsum(-1) - probs) >= self.top_p  # mass before the token already >= top_p
        mask = torch.zeros_like(outside).scatter(-1, order, outside)
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        uniform = uniform.clamp_(1e-20, 1.0 - 1e-7).to(scores.device)
        noisy = logp - torch.log(-torch.log(uniform))
        return noisy.masked_fill(mask | torch.isinf(logp), float("-inf")).to(scores.dtype)


def tiny_blip_dir(*, pretrained: bool = False) -> Path:
    """The cached tiny BLIP (:class:`~fcap.models.tiny_blip.TinyBlip`), built on first use:
    random (``source: tiny``) or trained on shapes images (``pretrained``: ``tiny-pretrained``)."""
    source = sources.TINY_PRETRAINED if pretrained else sources.TINY
    return Path(sources.resolve_source(source, key="captioner.source", tiny_options=TinyBlip(),
                                       build_tiny=build_tiny_blip))


@MODELS.register("blip", config=BlipLabelerConfig)
class BlipLabeler:
    """BLIP (``BlipForConditionalGeneration``) captioning single frames; the paper uses BLIP-Large."""

    role = "labeler"

    def __init__(self, cfg: BlipLabelerConfig) -> None:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.cfg = cfg
        path = cfg.source
        kwargs = {"revision": cfg.revision} if cfg.revision else {}
        if cfg.source in (sources.TINY, sources.TINY_PRETRAINED):  # random, or trained on shapes
            path = str(tiny_blip_dir(pretrained=cfg.source == sources.TINY_PRETRAINED))
        with sources.loading("captioner.source", cfg.source):
            model = BlipForConditionalGeneration.from_pretrained(path, **kwargs).eval()
            # without torchvision this picks BlipImageProcessorPil itself, no fallback warning
            self.processor = BlipProcessor.from_pretrained(path, **kwargs)
        self.id = cfg.source + (f"@{cfg.revision}" if cfg.revision else "")
        self.weights_hash = sources.weights_hash(model)  # before any cast: same on CPU and GPU
        cuda = torch.cuda.is_available() if cfg.device == "auto" else cfg.device == "cuda"
        self.device = torch.device("cuda" if cuda else "cpu")
        if not cuda and cfg.cpu_threads is not None:
            torch.set_num_threads(cfg.cpu_threads)
        name = cfg.dtype if cfg.dtype != "auto" else ("float16" if cuda else "float32")
        self.dtype = getattr(torch, name)
        self.model = model.to(self.device, self.dtype)
        ip = self.processor.image_processor
        self.mean = torch.tensor(ip.image_mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(ip.image_std, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(b, H, W, 3)`` -> normalised ``(b, 3, H, W)`` (BLIP's rescale + mean/std)."""
        x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        return ((x - self.mean) / self.std).to(self.dtype)

    @torch.inference_mode()
    def caption(self, frames: torch.Tensor, *, seeds: Sequence[Sequence[int]],
                sampling: SamplingConfig) -> list[list[str]]:
        """``captions_per_frame`` captions for each frame; ``seeds[i][j]`` seeds caption ``j`` of frame ``i``."""
        from transformers import LogitsProcessorList

        n = sampling.captions_per_frame
        if len(seeds) != frames.shape[0] or any(len(s) != n for s in seeds):
            raise ValueError(f"caption: need {n} seeds for each of {frames.shape[0]} frames")
        processors = LogitsProcessorList()
        if sampling.method == "nucleus":
            processors.append(NucleusNoise(seeds=[s for row in seeds for s in row],
                                           top_p=sampling.top_p, temperature=sampling.temperature))
        texts = caption_images(
            self.model, self.processor.tokenizer, self.preprocess(frames),
            max_new_tokens=sampling.max_new_tokens, min_new_tokens=sampling.min_new_tokens,
            num_beams=sampling.num_beams if sampling.method == "beam" else 1, repeat=n,
            logits_processor=processors)
        return [texts[i * n:(i + 1) * n] for i in range(frames.shape[0])]
