"""What a run read from other stages, by content: a finished run is stale when its inputs changed.

The config hash chains on the producers' config hashes, so re-labelling with
other options reruns the consumers. This adds the content: DONE.json records,
for each reference of the stage (fcap/experiment/refs.py), each path option
declared with ``fcap.config.input_path`` (``adapters:`` trained elsewhere) and each file
a data source reads that a run makes (``DataSource.input_files``: pseudolabels given as
a path), a stamp (size, mtime) and a sha256 of the file (of a folder: of its files'
names, sizes and mtimes). A later check first compares stamps and hashes only when a stamp
differs, so an untouched multi-GB pseudolabels file is not read again.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def stamp(path: str) -> list[int] | None:
    """[size, mtime_ns] of a file, or of a folder's newest file; None when absent."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    if p.is_dir():
        files = [f.stat() for f in p.rglob("*") if f.is_file()]
        return [sum(s.st_size for s in files), max((s.st_mtime_ns for s in files), default=0)]
    return None


def digest(path: str) -> str | None:
    """sha256 of a file's bytes, or of a folder's (relative name, size, mtime) listing."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        st = p.stat()
        return _file_digest(str(p), st.st_size, st.st_mtime_ns)
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
    return None


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256, read once per process for one stamp: is_complete asks it for every
    stage downstream of a rewritten multi-GB pseudolabels file (the stamp differs from the
    recorded one, so the bytes decide), and the launchers ask is_complete many times."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def paths(run) -> dict[str, str]:
    """``{option key: path}`` that ``run`` reads: its references to other stages' outputs,
    and its :func:`fcap.config.input_path` options (adapters trained elsewhere)."""
    from fcap.config import input_paths

    out = {r.dotted: r.path for r in (run.spec.refs if run.spec else ())}
    for key, given in input_paths(run.cfg).items():
        out.setdefault(key, os.path.abspath(os.path.expanduser(given)))
    for key, path in _source_files(run.cfg).items():
        out.setdefault(key, path)  # a reference ({from: merge}) is tracked as one already
    return out


def _source_files(cfg) -> dict[str, str]:
    """``{option key: path}`` of the files the config's data sources read that a run makes
    (``DataSource.input_files``: pseudolabels), resolved as the readers do. A relative
    ``root:`` without ``datasets.root`` names the tiny world, made when the stage starts."""
    from fcap.data.env import is_relative, under_root
    from fcap.experiment.walk import data_root, data_sources

    root_dir = data_root(cfg)
    resolve = lambda path: under_root(path, root_dir) if path else path  # noqa: E731
    out = {}
    for key, source in data_sources(cfg):
        if is_relative(source.cfg.root) and not root_dir:
            continue
        root = under_root(source.cfg.root, root_dir)
        for option, path in source.entry.obj.input_files(source.cfg, root, resolve).items():
            out[f"{key}.{option}"] = os.path.abspath(path)
    return out


def record(run) -> dict[str, dict]:
    """``{option key: {path, stamp, sha256}}`` of every input of ``run`` (for DONE.json)."""
    return {key: {"path": path, "stamp": stamp(path), "sha256": digest(path)}
            for key, path in paths(run).items()}


def changed(run, recorded: dict | None) -> list[str]:
    """Option keys whose input differs from ``recorded`` (DONE.json's ``inputs``)."""
    if not recorded:
        return []
    out = []
    for key, now in paths(run).items():
        old = recorded.get(key)
        if old is None:
            continue  # recorded before this input was tracked: the config hash decides
        if old.get("path") != now or (stamp(now) != old.get("stamp")
                                      and digest(now) != old.get("sha256")):
            out.append(key)
    return out


def describe(run, keys: list[str]) -> str:
    read = paths(run)
    return "input changed: " + ", ".join(f"{k} ({os.path.basename(read.get(k, ''))})"
                                         for k in keys)
