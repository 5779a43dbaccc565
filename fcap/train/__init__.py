"""fcap.train: the DeepSpeed trainer, its optimizers and schedulers.

Importing this package registers ``OPTIMIZERS`` (adamw, adam, sgd) and
``SCHEDULERS`` (constant, warmup_cosine, warmup_linear).
"""
from fcap.train import optimizers, schedulers  # noqa: F401  (register components)
from fcap.train.config import TrainConfig
from fcap.train.preemption import TrainingInterrupted, install_signal_handler, request_checkpoint

__all__ = ["TrainConfig", "TrainingInterrupted", "install_signal_handler", "request_checkpoint"]
