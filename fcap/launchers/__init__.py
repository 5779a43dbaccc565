"""Launchers: where stages run (``local``; ``slurm`` via submitit)."""
from fcap.launchers import local, slurm  # noqa: F401  (register "local", "slurm")
