"""Bring a source spectrum to the library's canonical form: axis, scale, then grid.

- Axis: wavenumber (cm-1) and wavelength (nm) are the same quantity, nm = 1e7 / cm-1.
- Scale: reflectance fraction R, reflectance percent 100 R, apparent absorbance A = log10(1 / R).
- Grid: linear interpolation of each spectrum at the canonical positions, as ``prospectr::resample``
  with ``interpol = "linear"`` (Stevens & Ramirez-Lopez, *An introduction to the prospectr package*).
  The source must cover the grid; nothing is extrapolated.
"""

from __future__ import annotations

import numpy as np

from soil_contracts.bands import SpectralAxis
from soil_contracts.library import PLAUSIBLE_MAX, Grid, Scale, likely_scale
from soil_trainer.errors import DataError


def check_scale(values: np.ndarray, declared: Scale, ids: np.ndarray, source: str) -> None:
    """Refuse rows whose values cannot be on ``declared``: names the rows and the likely scale.

    Raises:
        DataError: some rows (a mixed batch) or all rows do not fit the declared scale.
    """
    low, high = PLAUSIBLE_MAX[declared]
    row_max, row_min = values.max(axis=1), values.min(axis=1)
    bad = (row_max < low) | (row_max > high) | (row_min < -0.5)
    if not bad.any():
        return
    first = int(np.argmax(bad))
    seen = likely_scale(float(row_max[first]), float(row_min[first]))
    if bad.all():
        raise DataError(f"{source}: declared scale {declared.value}, but the values (largest "
                        f"{row_max[first]:.3g} in sample {ids[first]}) look like {seen}; declare the right --scale")
    names = ", ".join(str(i) for i in ids[bad][:5])
    raise DataError(f"{source}: mixed scales in one batch: {int(bad.sum())} of {len(ids)} rows (e.g. {names}) "
                    f"look like {seen}, the others like {declared.value}; convert them or split the batch")


def to_reflectance_fraction(values: np.ndarray, scale: Scale) -> np.ndarray:
    """(n, p) values on ``scale`` -> reflectance fraction."""
    if scale is Scale.REFLECTANCE_FRACTION:
        return values
    if scale is Scale.REFLECTANCE_PERCENT:
        return values / 100.0
    return np.power(10.0, -values)


def from_reflectance_fraction(values: np.ndarray, scale: Scale) -> np.ndarray:
    """(n, p) reflectance fraction -> ``scale``. Raises DataError for R <= 0 into absorbance."""
    if scale is Scale.REFLECTANCE_FRACTION:
        return values
    if scale is Scale.REFLECTANCE_PERCENT:
        return values * 100.0
    if (values <= 0).any():
        raise DataError("reflectance of zero or below cannot be converted to absorbance")
    return np.log10(1.0 / values)


def convert_scale(values: np.ndarray, source: Scale, target: Scale) -> np.ndarray:
    """(n, p) values from ``source`` scale to ``target`` scale."""
    if source is target:
        return values
    return from_reflectance_fraction(to_reflectance_fraction(values, source), target)


def convert_axis(positions: np.ndarray, source: SpectralAxis, target: SpectralAxis) -> np.ndarray:
    """Band positions from one axis unit to the other (nm = 1e7 / cm-1)."""
    if source is target:
        return positions
    return 1e7 / positions


def resample(positions: np.ndarray, values: np.ndarray, grid: Grid, source: str) -> np.ndarray:
    """(n, p) spectra at ``positions`` -> (n, g) at the grid's positions, by linear interpolation.

    Raises:
        DataError: the source range does not cover the grid.
    """
    order = np.argsort(positions)
    x, y = positions[order], values[:, order]
    target = np.asarray(grid.positions())
    tol = 1e-6 * max(abs(grid.step), 1.0)
    if x[0] > target[0] + tol or x[-1] < target[-1] - tol:
        raise DataError(f"{source}: bands cover {x[0]:g}-{x[-1]:g}, but the canonical grid needs "
                        f"{target[0]:g}-{target[-1]:g} (params.yaml library.grid); nothing is extrapolated")
    return np.vstack([np.interp(target, x, row) for row in y])
