"""fcap.tasks."""
