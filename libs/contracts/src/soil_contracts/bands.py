"""Spectral band columns: the one place that knows how a band is named and where it sits.

A band column is ``wl_<nm>`` (wavelength, nanometres; vis-NIR) or ``wn_<cm-1>`` (wavenumber,
reciprocal centimetres; MIR), as LimeSoDa names them (Schmidinger & Heuvelink, 2023, *LimeSoDa: A
dataset collection for benchmarking of machine learning regressors in digital soil mapping*).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

BAND_PATTERN = re.compile(r"^(?P<prefix>wl|wn)_(?P<position>\d+(?:\.\d+)?)$")


class SpectralAxis(StrEnum):
    """The unit of a spectrum's x axis."""

    WAVELENGTH_NM = "wavelength_nm"
    WAVENUMBER_CM1 = "wavenumber_cm-1"

    @property
    def prefix(self) -> str:
        """Column prefix: ``wl`` or ``wn``."""
        return "wl" if self is SpectralAxis.WAVELENGTH_NM else "wn"

    @property
    def unit(self) -> str:
        """Unit symbol: ``nm`` or ``cm-1``."""
        return "nm" if self is SpectralAxis.WAVELENGTH_NM else "cm-1"


def is_band(column: object) -> bool:
    """Whether ``column`` names a spectral band."""
    return bool(BAND_PATTERN.match(str(column)))


def band_columns(columns: Iterable[object]) -> list[str]:
    """The band columns among ``columns``, in their given order."""
    return [str(c) for c in columns if is_band(c)]


def band_position(column: str) -> float:
    """The band's position on its axis (nm or cm-1). Raises ValueError for a non-band name."""
    match = BAND_PATTERN.match(column)
    if not match:
        raise ValueError(f"{column!r} is not a band column (wl_<nm> or wn_<cm-1>)")
    return float(match["position"])


def band_positions(columns: Iterable[str]) -> list[float]:
    """Positions of band columns, in order. Raises ValueError for a non-band name."""
    return [band_position(c) for c in columns]


def band_name(axis: SpectralAxis, position: float) -> str:
    """The column name of ``position`` on ``axis`` (``wl_350``, ``wn_4000.5``)."""
    text = f"{position:g}" if float(position) != int(position) else str(int(position))
    return f"{axis.prefix}_{text}"


def spectral_axis(columns: Iterable[str]) -> SpectralAxis:
    """The axis all band columns share.

    Raises:
        ValueError: no band column, or wavelength and wavenumber bands mixed.
    """
    prefixes = {BAND_PATTERN.match(c)["prefix"] for c in columns if is_band(c)}
    if not prefixes:
        raise ValueError("no band columns (wl_<nm> or wn_<cm-1>)")
    if len(prefixes) > 1:
        raise ValueError("wavelength (wl_) and wavenumber (wn_) bands are mixed")
    return SpectralAxis.WAVELENGTH_NM if prefixes == {"wl"} else SpectralAxis.WAVENUMBER_CM1
