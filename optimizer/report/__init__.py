"""Reporting: results files (atomic writes), statistics, tables, plots and rendered reports."""
