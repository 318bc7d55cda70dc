"""Errors the user can act on. Their text is shown as-is, on one line, never as a traceback."""


class BadInput(ValueError):
    """A parameter, device, dtype or size the user gave is not allowed; the text says what is."""
