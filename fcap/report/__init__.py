"""Reports: the paper's tables beside ours, plots and run metadata (report.md)."""
from fcap.report.spec import Column, ReportConfig

__all__ = ["Column", "ReportConfig"]
