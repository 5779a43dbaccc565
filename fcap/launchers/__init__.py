"""Launchers: where stages run (``local``; ``slurm`` via submitit)."""
from fcap.launchers import local  # noqa: F401  (registers "local")
