"""The label stage reads the collection the caption stages read.

A ``pseudolabel`` stage does not take the shared ``datasets:`` block (its config
hash would change with every loader option), so the planner hands it the two
things it shares with the caption stages, in each variant's document:

- ``videos:`` given as a relative path resolves against ``datasets.root``, as the
  data sources' relative ``root:``s do: ``videos: howto100m`` with
  ``datasets.root=/data`` labels ``/data/howto100m``, the folder the ``howto100m``
  source reads. Without a ``datasets.root`` it stays relative to the working folder.
- on the shapes world (``shapes:`` set, no ``shapes.world`` of its own, as in the
  tiny profile) it labels ``datasets.shapes_world``, so ``datasets.shapes_world.seed=1``
  moves the pseudolabels with the clips they describe. The default world's ``{}``
  leaves the stage's config (and its hash) as it was.

A label stage on the shapes world while the caption stages read a ``datasets.root``
with the world off (``--profile tiny datasets.shapes_world=null datasets.root=...``)
would label clips nothing reads: refused, naming the keys that label the root. An
experiment that only labels (pseudolabel_howto100m.yaml) given ``--profile tiny
datasets.root=...`` would label the world, not the root's videos: refused too (where a
stage takes ``datasets:``, its DatasetsConfig refuses root and world together).
"""
from __future__ import annotations

import copy

from fcap.config.errors import Problem
from fcap.config.loader import Origins
from fcap.experiment.spec import task_fields

TASK = "pseudolabel"
READS = ("root", "shapes_world")  # what a label stage reads of the datasets: block


def share_collection(doc: dict, origins: Origins) -> None:
    """Apply both rules of the module docstring to ``doc``'s label stages, in place."""
    from fcap.data.env import is_relative, under_root  # fcap.data loads torch: not at import

    datasets = _datasets(doc)
    root, world = datasets.get("root"), datasets.get("shapes_world")
    for sname, block in (doc.get("stages") or {}).items():
        if not isinstance(block, dict) or block.get("task") != TASK:
            continue
        videos = block.get("videos")
        if root and isinstance(videos, str) and videos and is_relative(videos):
            block["videos"] = under_root(videos, str(root))
            origins.record(block["videos"], f"{origins(f'stages.{sname}.videos')} under "
                                            f"datasets.root ({origins('datasets.root')})",
                           f"stages.{sname}.videos")
        shapes = block.get("shapes")
        if isinstance(world, dict) and isinstance(shapes, dict) and "world" not in shapes:
            shapes["world"] = copy.deepcopy(world)
            origins.record(world, origins("datasets.shapes_world"), f"stages.{sname}.shapes.world")


def _datasets(doc: dict) -> dict:
    return doc["datasets"] if isinstance(doc.get("datasets"), dict) else {}


def world_label_problem(doc: dict, origins: Origins) -> Problem | None:
    """The refusals of the module docstring's last paragraph, or None."""
    datasets = _datasets(doc)
    if not datasets.get("root"):
        return None
    for sname, block in (doc.get("stages") or {}).items():
        if not (isinstance(block, dict) and block.get("task") == TASK and block.get("shapes") is not None):
            continue
        key = f"stages.{sname}.shapes"
        if datasets.get("shapes_world") is not None:
            if "datasets" in task_fields(doc):  # its DatasetsConfig refuses root with shapes_world
                return None
            return Problem(origins("datasets.root"), "datasets.root", (
                f"{datasets['root']!r} is set together with shapes_world (the tiny profile's "
                f"synthetic data): stage '{sname}' would label the shapes world, not the videos "
                f"under datasets.root. To label those with this captioner: "
                f"datasets.shapes_world=null {key}=null stages.{sname}.videos=howto100m; to "
                f"label the shapes world drop datasets.root"))
        return Problem(origins(key), key, (
            f"stage '{sname}' labels the shapes world, but the other stages read "
            f"datasets.root = {datasets['root']!r} (datasets.shapes_world is null): its "
            f"labels would describe clips nothing reads. To label the root's videos: "
            f"{key}=null stages.{sname}.videos=howto100m"))
    return None
