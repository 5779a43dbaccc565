"""fcap.train."""
