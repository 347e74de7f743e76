"""The virtual board's one error type, apart so that the modules that start its VM raise it too."""


class BoardError(Exception):
    """The virtual board could not be started or used; the message says why in one line."""
