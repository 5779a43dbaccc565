"""fcap.data."""
