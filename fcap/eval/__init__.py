"""fcap.eval."""
