"""The run report: one static HTML page every run writes (`run_report.py`)."""
