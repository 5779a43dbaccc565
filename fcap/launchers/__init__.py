"""fcap.launchers."""
