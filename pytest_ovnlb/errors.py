"""Errors a person sees: one line that says what is wrong and what to do."""


class LabError(Exception):
    """A lab could not be built, reached or removed; the message is one line."""
