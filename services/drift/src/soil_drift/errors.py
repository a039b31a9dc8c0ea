"""Errors that map to the CLI's exit codes; drift itself is a verdict, not an error."""


class SoilDriftError(Exception):
    """Base class; ``exit_code`` is what ``main`` returns."""

    exit_code = 2


class ParamsError(SoilDriftError):
    """params.yaml is missing, malformed, or its ``drift`` section has an unknown key or a bad value."""


class DataError(SoilDriftError):
    """An input file is missing, unreadable, or does not hold what the gate needs."""


class OutputError(SoilDriftError):
    """The verdict or the figure cannot be written where asked."""
