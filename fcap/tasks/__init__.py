"""fcap.tasks: the stages an experiment chains (see README.md for their YAML keys).

Importing this package registers ``TASKS``: caption_pretrain, caption_finetune,
caption_eval, extract_features.
"""
from fcap.tasks import caption_eval, caption_train, extract_features  # noqa: F401  (register)
