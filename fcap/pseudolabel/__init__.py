"""fcap.pseudolabel."""
