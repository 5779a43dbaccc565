"""Options of the ``pseudolabel`` and ``pseudolabel_merge`` tasks (paper Sec. 3.1).

Defaults are the paper's settings: 8-second clips, the centre frame resized to
320x320, BLIP-Large, nucleus sampling with top-p 0.9.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from fcap.config import component, run_option
from fcap.data.shapes import ShapesWorldConfig
from registry import MODELS


@dataclass(frozen=True)
class SamplingConfig:
    """How captions are decoded. ``nucleus`` is the paper's; ``beam``/``greedy`` for comparison."""

    method: Literal["nucleus", "beam", "greedy"] = "nucleus"
    top_p: float = 0.9  # nucleus mass (paper: 0.9)
    temperature: float = 1.0
    max_new_tokens: int = 30  # caption length cap, tokens (paper's mean caption: 10.0 words)
    min_new_tokens: int = 0
    num_beams: int = 3  # only for method: beam
    captions_per_frame: int = 1  # independent samples per captioned frame (nucleus only)

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.captions_per_frame < 1:
            raise ValueError(f"captions_per_frame must be >= 1, got {self.captions_per_frame}")
        if self.captions_per_frame > 1 and self.method != "nucleus":
            raise ValueError(f"captions_per_frame > 1 needs method 'nucleus' "
                             f"({self.method} is deterministic), got {self.captions_per_frame}")


@dataclass(frozen=True)
class ClipConfig:
    """How a video is cut into clips and which frames of a clip are captioned."""

    seconds: float = 8.0  # clip length (paper: 8 s)
    # The remainder after the last full clip: ``keep`` labels it as a shorter
    # final clip (merged into the previous clip instead when shorter than
    # ``min_last_seconds``); ``merge`` always extends the previous clip;
    # ``drop`` leaves it unlabelled. A video shorter than ``seconds`` is one
    # clip under keep/merge and none under drop.
    last: Literal["keep", "merge", "drop"] = "keep"
    min_last_seconds: float = 2.0
    frames: Literal["center", "random", "even"] = "center"  # paper: center
    num_frames: int = 1  # frames per clip for ``even`` (k evenly spaced); 1 otherwise
    # Snap each chosen frame to the nearest keyframe inside the clip and within this
    # many seconds (0: the exact frame, the paper's). A keyframe decodes alone; any
    # other frame needs every frame since the previous keyframe (up to a whole GOP).
    keyframe_window: float = 0.0

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {self.seconds}")
        if self.min_last_seconds < 0:
            raise ValueError(f"min_last_seconds must be >= 0, got {self.min_last_seconds}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.keyframe_window < 0:
            raise ValueError(f"keyframe_window must be >= 0, got {self.keyframe_window}")
        if self.num_frames > 1 and self.frames != "even":
            raise ValueError(f"num_frames > 1 needs frames 'even', got frames {self.frames!r}")


@dataclass(frozen=True)
class ShapesVideosConfig:
    """The synthetic shapes world's ``howto100m/`` videos (tiny profile) instead of a real folder."""

    # where the world is generated once and cached; None: the fcap cache folder that the
    # caption tasks' ``datasets: {shapes_world: ...}`` also uses (so both read one world)
    root: Optional[str] = None
    world: ShapesWorldConfig = field(default_factory=ShapesWorldConfig)


@dataclass(frozen=True)
class PseudolabelConfig:
    """Task ``pseudolabel``: caption clips of a video collection into sharded JSONL."""

    videos: Optional[str] = None  # collection root: <videos>/<video_id>.<ext> (HowTo100M layout)
    shapes: Optional[ShapesVideosConfig] = None  # instead of ``videos``: the shapes world (tiny profile)
    ids: Optional[str] = None  # text file of video ids, one per line; None: every video in the root
    extensions: tuple[str, ...] = ("mp4", "webm", "mkv")
    clips: ClipConfig = field(default_factory=ClipConfig)
    frame_size: int = 320  # frames decoded at frame_size x frame_size (paper: 320)
    captioner: Any = component(MODELS, "blip")
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: Optional[int] = None  # None: the experiment's seed
    # run_option: not in the stage's config hash (captions are seeded per clip, so the
    # batching does not change them): lowering batch_size after an out-of-memory error
    # resumes the finished shards instead of labelling everything again
    batch_size: int = run_option(64)  # frames per captioning batch (spans clips and videos)
    num_workers: int = run_option(2)  # DataLoader decode workers (0: decode in the main process)
    prefetch_videos: int = run_option(4)  # decoded videos queued per worker
    num_shards: int = 1
    shard_index: Optional[int] = None  # None: run every shard in turn (SLURM: the array index)
    flush_every: int = run_option(256)  # clips between progress flushes (resume granularity)
    # Stop (SkipLimitError) when more than this fraction of the videos failed (unreadable,
    # truncated, missing, too short to give a clip); no labelled clip at all always stops.
    # The data readers' max_skip_fraction rule (fcap/data/skips.py); not a label setting,
    # so raising it lets a finished shard pass without labelling again.
    max_failure_fraction: float = run_option(0.05)

    def __post_init__(self) -> None:
        if bool(self.videos) == (self.shapes is not None):
            raise ValueError("set exactly one of 'videos' (the collection folder) and 'shapes' "
                             f"(the synthetic world), got videos={self.videos!r}, shapes={self.shapes!r}")
        if self.frame_size < 8:
            raise ValueError(f"frame_size must be >= 8, got {self.frame_size}")
        for name in ("batch_size", "num_shards", "flush_every", "prefetch_videos"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.shard_index is not None and not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index must be in [0, num_shards={self.num_shards}), "
                             f"got {self.shard_index}")
        if not self.extensions:
            raise ValueError("extensions must list at least one file extension")
        _check_fraction(self.max_failure_fraction)


def _check_fraction(value: Optional[float]) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"max_failure_fraction must be in [0, 1], got {value}")


@dataclass(frozen=True)
class MergeConfig:
    """Task ``pseudolabel_merge``: validate every shard and write the merged index."""

    shards_from: Optional[str] = None  # stage whose run dir holds shards/; None: the only dependency
    # run_option: the report's options and the failure budget change what the report shows
    # or whether the merge passes, never pseudolabels.jsonl, so they are not in the config
    # hash that pretraining chains on: 100 report clips instead of 16 do not retrain every
    # variant. A complete merge keeps its report: `--stages merge --force` writes it again
    # (the same pseudolabels.jsonl, byte for byte; the stages reading it stay complete).
    report_clips: int = run_option(16)  # clips in the visual report (0: no report)
    asr: Optional[str] = run_option(None)  # HowTo100M caption.json for the report's ASR column; None: the videos' own
    # The failure budget over the whole collection; None: the label stage's (its manifests).
    max_failure_fraction: Optional[float] = run_option(None)

    def __post_init__(self) -> None:
        if self.report_clips < 0:
            raise ValueError(f"report_clips must be >= 0, got {self.report_clips}")
        _check_fraction(self.max_failure_fraction)
