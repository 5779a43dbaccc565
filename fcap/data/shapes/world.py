"""The shapes world, generated once from a seed and cached, in the real datasets' layouts.

``ensure_shapes_world(root, cfg)`` writes under ``root``::

    msrvtt/     videos/all/videoN.mp4, train_val_videodatainfo.json, test_videodatainfo.json
    msvd/       YouTubeClips/<name>.avi, AllVideoDescriptions.txt, youtube_mapping.txt,
                {train,val,test}_list.txt (the split, as CLIP4Clip's msvd_data ships it)
    howto100m/  <video_id>.mp4 (several 8-s scenes each), caption.json (ASR-like: partly
                chit-chat) -- what real HowTo100M holds: no pseudolabels, which exist
                only as the output of the pseudolabel stage
    laion/      00000.tar ... (KEY.jpg, KEY.txt, KEY.json), as img2dataset writes them
    truth/      ground truth beside the layouts (the layouts hold only what the real
                datasets hold): clips.jsonl, one record per item of every layout --
                {layout, split, id (the reader's item id), colour, shape, direction
                (null for a still LAION image), background}; howto100m.jsonl, the
                generator's own per-clip captions (pseudolabel record format), read by
                the ``shapes`` source with ``captions: pseudolabel``
    shapes-world.json   marker: generator config and its hash, written last

It returns ``{"msrvtt": path, "msvd": ..., "howto100m": ..., "laion": ...}``. A
marker with the same config hash means the world is there; another hash (or
none) regenerates it. A file lock keeps concurrent ranks from writing at once.

Data ownership (fcap/io.py): ``root`` and each layout folder are claimed with
fcap's ``.fcap-owned`` marker. A ``root`` that holds files fcap did not write is
refused (OwnershipError), and regeneration removes only marked layout folders.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from fcap.cache import cache_dir
from fcap.io import claim_dir, remove_owned

from fcap.data.shapes.render import (ASR_CONTENT, CHIT_CHAT, DRAWING, IMAGE_TEMPLATES, VIDEO_TEMPLATES,
                                     random_scene, render_clip, render_image)
from fcap.data.shapes.writers import json_bytes, jpeg_bytes, write_tar, write_video

# 2: folders carry fcap's ownership marker; 3: truth/clips.jsonl; 4: 200-clip eval splits;
# 5: references with a usual phrasing (_references), 4 per clip; 6: MSVD split lists (200 val
# clips). What the scenes look like has its own version, render.DRAWING, also in the digest.
GENERATOR_VERSION = 6
LAYOUTS = ("msrvtt", "msvd", "howto100m", "laion")
TRUTH = "truth"  # ground truth beside the layouts (not a dataset folder)
CLIPS = "clips.jsonl"  # in TRUTH: every item's attributes
MARKER = "shapes-world.json"


@dataclass(frozen=True)
class ShapesWorldConfig:
    seed: int = 0
    frame_size: int = 32  # pixels (square, even: H.264 needs even sizes)
    frames: int = 8  # frames per MSR-VTT / MSVD clip
    fps: int = 4  # frames per second of every video
    # train, val, test. With 20 val clips two runs of one commit differed by 10 CIDEr-D.
    # With 200 train / 200 val the adapters named 3-4% of shapes wrong and a wrong clip
    # cost 1.8 CIDEr-D points (x100): std 2.1-3.8 over seeds; 1,000 train clips (MSR-VTT
    # has 6,513) and 500 val (MSR-VTT has 497) give 0.6-1.8 (bench/README.md)
    msrvtt_videos: tuple[int, int, int] = (1000, 500, 200)
    # train, val, test; the split is in split list files (MSVD's standard split by vid
    # number has room for 100 val clips only)
    msvd_videos: tuple[int, int, int] = (60, 200, 200)
    captions_per_video: int = 4  # references per MSR-VTT / MSVD clip (_references)
    howto_videos: int = 24
    howto_scenes: int = 3  # 8-s scenes (clips) per HowTo100M-style video
    scene_seconds: float = 8.0
    asr_chit_chat: float = 0.4  # fraction of ASR segments unrelated to the picture
    laion_images: int = 400
    laion_shard_size: int = 100

    def __post_init__(self) -> None:
        if self.frame_size < 16 or self.frame_size % 2:
            raise ValueError(f"frame_size must be even and >= 16, got {self.frame_size}")
        for name in ("frames", "fps", "captions_per_video", "howto_videos", "howto_scenes",
                     "laion_images", "laion_shard_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, counts in (("msrvtt_videos", self.msrvtt_videos),
                             ("msvd_videos", self.msvd_videos)):
            if len(counts) != 3 or min(counts) < 0:
                raise ValueError(f"{name} must be 3 counts >= 0 (train, val, test), got {counts}")
        if not 0.0 <= self.asr_chit_chat <= 1.0:
            raise ValueError(f"asr_chit_chat must be in [0, 1], got {self.asr_chit_chat}")

    def digest(self) -> str:
        body = json.dumps({"version": GENERATOR_VERSION, "drawing": DRAWING,
                           **dataclasses.asdict(self)},
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def world_root(root: str | None, cfg: ShapesWorldConfig) -> str:
    """``root``, or by default ``<fcap cache>/shapes-world-<config digest>`` (:mod:`fcap.cache`)."""
    if root:
        return os.path.abspath(os.path.expanduser(root))
    return str(cache_dir(f"shapes-world-{cfg.digest()}"))


def ensure_shapes_world(root: str | None, cfg: ShapesWorldConfig | None = None, *,
                        key: str | None = None) -> dict[str, str]:
    """Generate the world under ``root`` (None: :func:`world_root`'s cache folder) unless the
    same config is already there; return each layout's directory.

    ``root`` must be new, empty, or a folder fcap marked; ``key`` names the option that chose
    it in the OwnershipError otherwise.
    """
    cfg = cfg or ShapesWorldConfig()
    cached = not root
    root = world_root(root, cfg)
    claim_dir(root, kind="shapes world", key="FCAP_CACHE" if cached else key)
    roots = {name: os.path.join(root, name) for name in LAYOUTS}
    truth = os.path.join(root, TRUTH)
    with open(os.path.join(root, ".shapes-world.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker_hash(root) == cfg.digest():
            return roots
        marker = os.path.join(root, MARKER)
        if os.path.exists(marker):
            os.remove(marker)  # inside the claimed root: fcap's own file
        for path in [*roots.values(), truth]:  # only folders this generator created and marked
            remove_owned(path)
        claim_dir(truth, kind="shapes world ground truth")
        records: list[dict] = []
        for i, name in enumerate(LAYOUTS):
            claim_dir(roots[name], kind=f"shapes world {name} layout")
            for split, item_id, scene, moving in WRITERS[name](
                    roots[name], cfg, np.random.default_rng([cfg.seed, i]), truth=truth):
                records.append({"layout": name, "split": split, "id": item_id,
                                "colour": scene.colour, "shape": scene.shape,
                                "direction": scene.direction if moving else None,
                                "background": scene.background})
        with open(os.path.join(truth, CLIPS), "w") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in records)
        with open(marker, "w") as f:
            json.dump({"hash": cfg.digest(), "config": dataclasses.asdict(cfg),
                       "roots": roots}, f, indent=1)
    return roots


def _marker_hash(root: str) -> str | None:
    try:
        with open(os.path.join(root, MARKER)) as f:
            return json.load(f).get("hash")
    except (OSError, ValueError):
        return None


def _references(scene, n: int) -> list[str]:
    """``n`` reference captions of a video: the world's usual phrasing (the first video
    template) for half of them (rounded up), the other templates in turn for the rest.

    Real caption sets have a most common phrasing; with the templates equally frequent
    (world version 4), a model's choice among them was a coin toss per seed that moved
    CIDEr-D by up to 33 points (x100) while every attribute stayed the same (bench/README.md).
    """
    usual = -(-n // 2)
    others = VIDEO_TEMPLATES[1:]
    chosen = [VIDEO_TEMPLATES[0]] * usual + [others[k % len(others)] for k in range(n - usual)]
    return [scene.caption(t) for t in chosen]


# Each writer returns (split, item id as the layout's reader names it, scene, moving) for
# every item it wrote: the ground truth of truth/clips.jsonl.

def _write_msrvtt(root: str, cfg: ShapesWorldConfig, rng: np.random.Generator, *,
                  truth: str) -> list:
    os.makedirs(os.path.join(root, "videos", "all"))
    files = {"train_val_videodatainfo.json": {"videos": [], "sentences": []},
             "test_videodatainfo.json": {"videos": [], "sentences": []}}
    splits = ["train"] * cfg.msrvtt_videos[0] + ["validate"] * cfg.msrvtt_videos[1] + \
        ["test"] * cfg.msrvtt_videos[2]
    seconds = cfg.frames / cfg.fps
    written = []
    for n, split in enumerate(splits):
        scene, vid = random_scene(rng), f"video{n}"
        written.append(("val" if split == "validate" else split, vid, scene, True))
        write_video(os.path.join(root, "videos", "all", f"{vid}.mp4"),
                    render_clip(scene, size=cfg.frame_size, frames=cfg.frames), fps=cfg.fps)
        info = files["test_videodatainfo.json" if split == "test" else
                     "train_val_videodatainfo.json"]
        info["videos"].append({"video_id": vid, "split": split, "id": n, "category": 0,
                               "url": f"shapes://{vid}", "start time": 0.0,
                               "end time": seconds})
        for caption in _references(scene, cfg.captions_per_video):
            info["sentences"].append({"video_id": vid, "caption": caption,
                                      "sen_id": len(info["sentences"])})
    for name, data in files.items():
        with open(os.path.join(root, name), "w") as f:
            json.dump({"info": {"generator": "fcap shapes world"}, **data}, f)
    return written


def _write_msvd(root: str, cfg: ShapesWorldConfig, rng: np.random.Generator, *,
                truth: str) -> list:
    os.makedirs(os.path.join(root, "YouTubeClips"))
    # vid numbers start where MSVD's standard ranges do, never shared between splits; the
    # split itself is in the list files (fcap/data/msvd.py)
    n_train, n_val, _ = cfg.msvd_videos
    first_vid = {"train": 1, "val": max(1201, n_train + 1)}
    first_vid["test"] = max(1301, first_vid["val"] + n_val)
    mapping, descriptions = [], ["# MSVD-style descriptions of the fcap shapes world",
                                 "# <clip name> <caption>"]
    written, lists = [], {}
    for split, count in zip(("train", "val", "test"), cfg.msvd_videos):
        lists[split] = []
        for k in range(count):
            scene, vid = random_scene(rng), first_vid[split] + k
            name = f"shp{vid:05d}_{k}_{k + 2}"
            written.append((split, f"vid{vid}", scene, True))
            lists[split].append(name)
            write_video(os.path.join(root, "YouTubeClips", f"{name}.avi"),
                        render_clip(scene, size=cfg.frame_size, frames=cfg.frames), fps=cfg.fps)
            mapping.append(f"{name} vid{vid}")
            descriptions += [f"{name} {c}" for c in _references(scene, cfg.captions_per_video)]
    with open(os.path.join(root, "youtube_mapping.txt"), "w") as f:
        f.write("\n".join(mapping) + "\n")
    with open(os.path.join(root, "AllVideoDescriptions.txt"), "w") as f:
        f.write("\n".join(descriptions) + "\n")
    for split, names in lists.items():
        with open(os.path.join(root, f"{split}_list.txt"), "w") as f:
            f.write("".join(f"{name}\n" for name in names))
    return written


def _write_howto100m(root: str, cfg: ShapesWorldConfig, rng: np.random.Generator, *,
                     truth: str) -> list:
    per_scene = max(1, int(round(cfg.scene_seconds * cfg.fps)))
    asr, pseudolabels, written = {}, [], []
    for v in range(cfg.howto_videos):
        vid = f"shw{v:04d}{''.join(rng.choice(list('abcdefghjkmnpqrstuvwxyz'), 5))}"
        scenes = [random_scene(rng) for _ in range(cfg.howto_scenes)]
        frames = np.concatenate([render_clip(s, size=cfg.frame_size, frames=per_scene)
                                 for s in scenes])
        write_video(os.path.join(root, f"{vid}.mp4"), frames, fps=cfg.fps)
        seg = {"start": [], "end": [], "text": []}
        t = 0.0
        for k, scene in enumerate(scenes):
            lo, hi = k * cfg.scene_seconds, (k + 1) * cfg.scene_seconds
            written.append(("train", f"{vid}#{k}", scene, True))
            pseudolabels.append({"video_id": vid, "clip_index": k, "start": lo, "end": hi,
                                 "frame_time": (lo + hi) / 2,
                                 "caption": scene.caption(IMAGE_TEMPLATES[0])})
            while t < hi - 0.5:  # ASR segments of 1.5-3.5 s, like HowTo100M's
                end = min(hi, t + float(rng.uniform(1.5, 3.5)))
                pool = CHIT_CHAT if rng.random() < cfg.asr_chit_chat else ASR_CONTENT
                seg["start"].append(round(t, 2))
                seg["end"].append(round(end, 2))
                seg["text"].append(scene.caption(pool[int(rng.integers(len(pool)))]))
                t = end + float(rng.uniform(0.0, 0.3))
        asr[vid] = seg
    with open(os.path.join(root, "caption.json"), "w") as f:
        json.dump(asr, f)
    with open(os.path.join(truth, "howto100m.jsonl"), "w") as f:
        for record in sorted(pseudolabels, key=lambda r: (r["video_id"], r["clip_index"])):
            f.write(json.dumps(record) + "\n")
    return written


def _write_laion(root: str, cfg: ShapesWorldConfig, rng: np.random.Generator, *,
                 truth: str) -> list:
    n_shards = -(-cfg.laion_images // cfg.laion_shard_size)
    written = []
    for shard in range(n_shards):
        samples = []
        count = min(cfg.laion_shard_size, cfg.laion_images - shard * cfg.laion_shard_size)
        for k in range(count):
            scene, key = random_scene(rng), f"{shard:05d}{k:04d}"
            written.append(("train", key, scene, False))  # a still image: no direction
            caption = scene.caption(IMAGE_TEMPLATES[int(rng.integers(len(IMAGE_TEMPLATES)))])
            image = jpeg_bytes(render_image(scene, size=cfg.frame_size))
            meta = {"key": key, "caption": caption, "status": "success",
                    "url": f"shapes://{key}.jpg", "width": cfg.frame_size,
                    "height": cfg.frame_size}
            samples.append((key, {".jpg": image, ".txt": caption.encode(),
                                  ".json": json_bytes(meta)}))
        write_tar(os.path.join(root, f"{shard:05d}.tar"), samples)
        with open(os.path.join(root, f"{shard:05d}_stats.json"), "w") as f:
            json.dump({"count": count, "successes": count}, f)
    return written


WRITERS = {"msrvtt": _write_msrvtt, "msvd": _write_msvd, "howto100m": _write_howto100m,
           "laion": _write_laion}
