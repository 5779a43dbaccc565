"""Reports: the paper's tables beside ours, plots and run metadata (report.md).

The ``report:`` block they read is :class:`fcap.experiment.report_config.ReportConfig`.
"""
