"""Exit codes of ``fcap-run``, and which errors are the user's or the data's to fix.

An error listed in :data:`KNOWN` is a user or data error: ``fcap-run`` prints
its message as one line (no traceback) and exits with its code; anything else
is a bug or an unexpected failure (code 1 inside a stage, a traceback outside
one). ``--debug`` or ``FCAP_DEBUG=1`` adds the traceback to the console; a
stage's ``log.txt`` and ``FAILED.json`` always hold it. The table is documented
in ``fcap/cli.py``'s docstring.
"""
from __future__ import annotations

import os
import sys

OK = 0
STAGE_FAILED = 1  # a stage raised something unexpected, or was blocked by a failed dependency
CONFIG = 2  # configuration, plugin or command-line error
DATA = 3  # a dataset, annotation, media or checkpoint that cannot be used
BUSY = 4  # another process is running the stage (its run directory is locked)
REFUSED = 5  # an output folder holds files fcap did not write: fcap will not touch it
INTERRUPTED = 130  # Ctrl-C

# (module, class) -> code, most specific first. Looked up in sys.modules: an error
# of a module that was never imported cannot have been raised, so nothing heavy
# (torch) is imported to classify an error.
KNOWN: tuple[tuple[str, str, int], ...] = (
    ("fcap.config.errors", "ConfigError", CONFIG),
    ("fcap.plugins", "PluginError", CONFIG),
    ("fcap.launchers.slurm", "SubmitError", CONFIG),  # sbatch refused a job: profile or resources
    ("registry.registry", "UnknownComponentError", CONFIG),
    ("fcap.io", "UnwritableError", CONFIG),  # output_root on a path this user cannot write
    ("fcap.data.errors", "DataError", DATA),
    ("fcap.data.errors", "SkipLimitError", DATA),
    ("fcap.pseudolabel.merge", "MergeError", DATA),
    ("fcap.train.checkpoint", "CheckpointError", DATA),
    ("fcap.models.sources", "ModelSourceError", DATA),
    ("builtins", "FileNotFoundError", DATA),  # a dataset, model or upstream output not found
    ("fcap.experiment.lock", "RunBusyError", BUSY),
    ("fcap.io", "OwnershipError", REFUSED),
)
KIND = {CONFIG: "configuration error", DATA: "data error", BUSY: "busy",
        REFUSED: "refused"}


def code_for(err: BaseException) -> int | None:
    """The exit code of a user or data error; None for anything else."""
    for module, name, code in KNOWN:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(err, cls):
            return code
    return None


def debug_enabled() -> bool:
    """``FCAP_DEBUG`` set to anything but '', 0, false or no (``fcap-run --debug`` sets it)."""
    return os.environ.get("FCAP_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
