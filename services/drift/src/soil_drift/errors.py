"""Errors that map to the CLI's exit codes; drift itself is a verdict (exit 1), not an error."""

from __future__ import annotations

from soil_contracts.errors import ExitCode, SoilError

# Packages whose errors, when they name a file, mean that file cannot be read.
FOREIGN_READERS = ("pyarrow", "pandas")


class SoilDriftError(SoilError):
    """Base class; ``exit_code`` is what ``main`` returns."""

    exit_code = ExitCode.BAD_INPUT


class ParamsError(SoilDriftError):
    """params.yaml is missing, malformed, or its ``drift`` section has an unknown key or a bad value."""


class DataError(SoilDriftError):
    """An input file is missing, unreadable, or does not hold what the gate needs."""


class OutputError(SoilDriftError):
    """The verdict or the figure cannot be written where asked."""


class MissingExtra(SoilDriftError):
    """The command needs an optional part of soil-drift that is not installed (``soil-drift[files]``, ``[plot]``)."""


def require_extra(module: str, extra: str, what: str) -> None:
    """Raise MissingExtra unless ``module`` can be imported; it is not imported here.

    The gate's array core needs numpy and scipy only (the model API's live drift check installs just
    that); reading files and drawing the figure are the extras ``files`` and ``plot``.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(f"{what} needs {module}, which is not installed: install 'soil-drift[{extra}]'")


def translate_read_error(exc: BaseException) -> DataError | None:
    """The ``run_main`` hook: a pyarrow or pandas error naming its file is a DataError (exit 2).

    The readers turn what they can attribute to a file into a DataError themselves; this catches
    what still escapes them (pandas' own OSError for a file that vanished mid-read). None, for
    everything else, makes ``run_main`` report a crash (exit 70), never a verdict.
    """
    filename = getattr(exc, "filename", None)
    if filename and _raised_in(exc, FOREIGN_READERS):
        return DataError(f"{filename}: cannot read ({type(exc).__name__}: {exc})")
    return None


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether the innermost frame of ``exc``'s traceback belongs to one of ``packages``."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in packages
