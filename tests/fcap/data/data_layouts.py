"""Helpers writing tiny copies of each dataset layout (imported by the data tests)."""
from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np

from fcap.data.shapes import ShapesWorldConfig

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

SMALL_WORLD = ShapesWorldConfig(seed=3, msrvtt_videos=(24, 6, 6), msvd_videos=(8, 3, 3),
                                captions_per_video=2, howto_videos=4, howto_scenes=2,
                                laion_images=96, laion_shard_size=12)


def loader_kwargs(**overrides):
    """build_loader keywords for small fast loaders."""
    kw = dict(train=True, batch_size=4, num_workers=0, image_size=32, mean=MEAN, std=STD,
              num_frames=4)
    kw.update(overrides)
    return kw


def refuse_open(monkeypatch, path, error: OSError) -> None:
    """Make ``open(path)`` raise ``error`` (permission denied, an NFS I/O error: root in the
    test machine reads any file, so the refusal is simulated)."""
    import builtins

    real_open = builtins.open

    def refusing(file, *args, **kw):
        if str(file) == str(path):
            raise error
        return real_open(file, *args, **kw)

    monkeypatch.setattr(builtins, "open", refusing)


def link(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.abspath(src), dst)


def write_msrvtt(root, videos: dict[str, str | bytes | None], *, split_of=None,
                 captions_per_video: int = 2) -> str:
    """An MSR-VTT layout: ``videos`` maps video_id -> source file (symlinked), bytes, or None."""
    root = str(root)
    os.makedirs(os.path.join(root, "videos", "all"), exist_ok=True)
    files = {"train_val_videodatainfo.json": {"videos": [], "sentences": []},
             "test_videodatainfo.json": {"videos": [], "sentences": []}}
    for n, (vid, src) in enumerate(videos.items()):
        dst = os.path.join(root, "videos", "all", f"{vid}.mp4")
        if isinstance(src, bytes):
            with open(dst, "wb") as f:
                f.write(src)
        elif src is not None:
            link(src, dst)
        split = (split_of or {}).get(vid, "train")
        info = files["test_videodatainfo.json" if split == "test" else
                     "train_val_videodatainfo.json"]
        info["videos"].append({"video_id": vid, "split": split})
        for k in range(captions_per_video):
            info["sentences"].append({"video_id": vid, "caption": f"{vid} caption {k}"})
    for name, data in files.items():
        with open(os.path.join(root, name), "w") as f:
            json.dump(data, f)
    return root


def write_tar(path, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    with tarfile.open(path, "w") as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(key + ext)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def image_bytes(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()
