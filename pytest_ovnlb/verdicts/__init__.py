"""Verdicts on what a lab did, free of pytest: a check returns a verdict or
raises Unmet, and the pytest layer reports it (pytest_ovnlb/plugin/hooks.py)."""


class Unmet(AssertionError):
    """A verdict that does not hold.  Its message says all there is to say:
    the test fails with it alone, without a traceback."""
