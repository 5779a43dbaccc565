"""fcap: the reference implementation of FrozenCaptioner (Lialin et al.)."""
__version__ = "0.1.0"
