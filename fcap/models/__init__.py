"""fcap.models."""
