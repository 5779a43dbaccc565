"""fcap.pseudolabel: BLIP pseudolabels for video clips (paper Sec. 3.1); see README.md.

Imports its component modules explicitly so they register:
``MODELS["blip"]`` (blip_labeler.py), ``TASKS["pseudolabel"]`` and
``TASKS["pseudolabel_merge"]`` (task.py). ``run_shard`` is the per-shard entry
point for SLURM job arrays; ``fcap.pseudolabel.merge.merge`` validates and
indexes the shards (also ``python -m fcap.pseudolabel.merge``).
"""
from fcap.pseudolabel import blip_labeler, task  # noqa: F401  (registration)
from fcap.pseudolabel.shard import run_shard

__all__ = ["run_shard"]
