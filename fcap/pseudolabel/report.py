"""Visual report: sampled clips' frame, pseudolabel, ASR (and ground truth) side by side (paper Figure 1).

The paper compared 100 clips by hand (pseudolabel better in 65%); this writes
``<dest>/report/index.html`` and ``<dest>/report/contact_sheet.png`` for that
comparison, from a merged ``<dest>/pseudolabels.jsonl`` + ``index.json``;
``report/`` is claimed (fcap/io.py): a ``report/`` fcap did not write is refused.
ASR comes from HowTo100M's ``caption.json``
(``{video_id: {"start": [...], "end": [...], "text": [...]}}``): the
segments overlapping the clip window, joined. On the shapes world a fourth
column gives each clip's ground truth (:mod:`fcap.pseudolabel.truth`), and the
header the pseudolabels' per-attribute accuracy from ``index.json``.
"""
from __future__ import annotations

import html
import json
import random
import textwrap
from pathlib import Path

from fcap.io import claim_dir, write_text_atomic
from fcap.pseudolabel.files import read_jsonl
from fcap.data.media import open_video, read_frames
from fcap.pseudolabel.frames import describe_error
from fcap.pseudolabel.truth import clip_id, describe, load_clip_truth

THUMB_W = 320
NO_ASR = "(no ASR)"


def asr_text(asr: dict, video_id: str, start: float, end: float) -> str:
    """The ASR segments of ``video_id`` overlapping ``[start, end)``, joined by spaces."""
    entry = asr.get(video_id)
    if not entry:
        return NO_ASR
    parts = [str(t).strip() for s, e, t in zip(entry["start"], entry["end"], entry["text"])
             if s < end and e > start]
    return " ".join(p for p in parts if p) or NO_ASR


def _video_path(collection: dict, extensions: list[str], video_id: str) -> Path | None:
    root = Path(collection["videos"]).expanduser()
    for ext in extensions:
        if (root / f"{video_id}.{ext}").is_file():
            return root / f"{video_id}.{ext}"
    return None


def _frame(path: Path | None, frame_time: float):
    """The captioned frame as a PIL image (natural aspect, THUMB_W wide), or an error string."""
    from PIL import Image

    if path is None:
        return "video file not found"
    try:
        vr = open_video(path)
        idx = min(int(round(frame_time * vr.get_avg_fps())), len(vr) - 1)
        image = Image.fromarray(read_frames(vr, [idx], path=str(path))[0])
    except Exception as err:
        return describe_error(err)
    return image.resize((THUMB_W, max(1, round(image.height * THUMB_W / image.width))))


def _contact_sheet(rows: list[dict], images: list, path: Path, cols: int = 4) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    cell_h = 180 + 14 * 12
    sheet = Image.new("RGB", (cols * (THUMB_W + 10), -(-len(rows) // cols) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (row, image) in enumerate(zip(rows, images)):
        x, y = (i % cols) * (THUMB_W + 10), (i // cols) * cell_h
        if isinstance(image, str):
            draw.text((x + 4, y + 80), f"[{image[:40]}]", fill="red", font=font)
        else:
            thumb = image.copy()
            thumb.thumbnail((THUMB_W, 180))
            sheet.paste(thumb, (x, y))
        lines = [f"{row['video_id']} #{row['clip_index']} @{row['frame_time']:.1f}s"]
        lines += textwrap.wrap("BLIP: " + row["caption"], 52)[:5]
        lines += textwrap.wrap("ASR: " + row["asr"], 52)[:5]
        if row.get("truth"):
            lines += textwrap.wrap("truth: " + row["truth"], 52)[:2]
        for j, line in enumerate(lines):
            draw.text((x + 2, y + 182 + 14 * j), line, fill="black", font=font)
    sheet.save(path)


def write_report(dest: str | Path, *, n: int = 16, asr: str | Path | None = None, seed: int = 0) -> dict:
    """Sample ``n`` clips of ``<dest>/pseudolabels.jsonl``; write the HTML page and PNG sheet."""
    dest = Path(dest)
    index = json.loads((dest / "index.json").read_text())
    records = read_jsonl(dest / "pseudolabels.jsonl")
    asr_data = json.loads(Path(asr).read_text()) if asr else {}
    picked = sorted(random.Random(seed).sample(range(len(records)), min(n, len(records))))
    out = claim_dir(dest / "report", kind="pseudolabel report")
    (out / "frames").mkdir(exist_ok=True)
    extensions = index["collection"]["extensions"]
    loaded = load_clip_truth(index["collection"]["videos"])
    truth = loaded[0] if loaded else None
    rows, images, cells = [], [], []
    for i in picked:
        row = dict(records[i])
        row["asr"] = asr_text(asr_data, row["video_id"], row["start"], row["end"]) if asr else NO_ASR
        if truth is not None:
            row["truth"] = describe(truth.get(clip_id(row)))
        image = _frame(_video_path(index["collection"], extensions, row["video_id"]), row["frame_time"])
        if isinstance(image, str):
            img_html = f"<em>{html.escape(image)}</em>"
        else:
            name = f"{row['video_id']}_{row['clip_index']:05d}.jpg"
            image.save(out / "frames" / name, quality=85)
            img_html = f'<img src="frames/{html.escape(name)}" width="{THUMB_W}">'
        rows.append(row)
        images.append(image)
        cells.append(f"<tr><td>{img_html}</td><td>{html.escape(row['video_id'])}<br>clip "
                     f"{row['clip_index']}: {row['start']:.1f}-{row['end']:.1f} s<br>frame "
                     f"{row['frame_time']:.2f} s</td><td>{html.escape(row['caption'])}</td>"
                     f"<td>{html.escape(row['asr'])}</td>"
                     + (f"<td>{html.escape(row['truth'])}</td>" if truth is not None else "")
                     + "</tr>")
    page = (f"<!doctype html><meta charset='utf-8'><title>fcap pseudolabels</title>"
            f"<h1>Pseudolabels vs ASR ({len(rows)} of {len(records)} clips)</h1>"
            f"<p>captioner {html.escape(index['captioner']['id'])}; sampling "
            f"{html.escape(json.dumps(index['sampling']))}; mean caption "
            f"{index['stats']['caption_words_mean']} words</p>" + _truth_line(index.get("truth"))
            + "<table border=1 cellpadding=4><tr><th>frame</th><th>clip</th><th>pseudolabel</th>"
            "<th>ASR</th>" + ("<th>ground truth</th>" if truth is not None else "") + "</tr>"
            + "".join(cells) + "</table>")
    write_text_atomic(out / "index.html", page)
    if rows:
        _contact_sheet(rows, images, out / "contact_sheet.png")
    return {"html": str(out / "index.html"), "png": str(out / "contact_sheet.png") if rows else None,
            "clips": len(rows)}


def _truth_line(scores: dict | None) -> str:
    if not scores:
        return ""
    acc = ", ".join(f"{a} {v:.2f}" for a, v in scores["accuracy"].items())
    named = ", ".join(f"{a} {v:.2f}" for a, v in scores["named"].items())
    return (f"<p>against the world's ground truth ({scores['clips']} clips): accuracy {acc}; "
            f"named at all: {named}</p>")
