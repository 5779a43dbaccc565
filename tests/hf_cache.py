"""A Hugging Face hub cache laid out by hand, as `hf download` leaves it (tests/conftest.py's
``hub_cache`` fixture, tests/fcap/models/test_hub.py)."""
import json
import shutil
from pathlib import Path


def put_in_hub_cache(cache, repo_id: str, files, commit: str = "0" * 40):
    """Lay ``files`` (name -> JSON-able content, or a folder to copy) out as the hub cache
    holds ``repo_id`` at main: refs/main -> snapshots/<commit>/."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    if isinstance(files, (str, Path)):
        shutil.copytree(files, snapshot, dirs_exist_ok=True)
    else:
        snapshot.mkdir(parents=True, exist_ok=True)
        for name, content in {"config.json": {}, **files}.items():
            (snapshot / name).write_text(json.dumps(content))
    return snapshot
