"""Conformance reports: per-run JSON (report.py, report.schema.json), JUnit
suite properties, measurements recorded by tests (record.py), exemptions,
and the matrix page over many runs (matrix.py, the `ovnlb-report` script)."""
