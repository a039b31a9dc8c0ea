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


BLUE_NM, RED_NM = (400.0, 500.0), (600.0, 700.0)


def check_visible_slope(values: np.ndarray, positions_nm: np.ndarray, declared: Scale, ids: np.ndarray,
                        source: str) -> None:
    """Refuse reflectance declared as absorbance, or absorbance as reflectance, by the visible slope.

    Their values overlap (fractions 0.02-0.8, absorbance 0.1-1.7), but soil reflectance rises from
    blue to red (Stoner & Baumgardner 1981, *Soil Sci. Soc. Am. J.* 45:1161; iron oxides and organic
    matter absorb most in the blue), so absorbance log10(1/R) falls there. On the six LimeSoDa
    vis-NIR sets (CV.98, SC.93, SL.125, SP.231, SSP.460, UL.120: 1127 samples) reflectance rises from
    400-500 to 600-700 nm in every sample and absorbance in none. The batch is refused when most rows,
    converted to reflectance from the declared scale, fall there. Skipped when the bands do not cover
    both windows (e.g. NIR-only instruments).

    Args:
        values: (n, p) spectra on the declared scale; positions_nm: (p,) band positions in nm.

    Raises:
        DataError: most rows fall from blue to red after conversion (names the likely scale).
    """
    blue = (positions_nm >= BLUE_NM[0]) & (positions_nm <= BLUE_NM[1])
    red = (positions_nm >= RED_NM[0]) & (positions_nm <= RED_NM[1])
    if not blue.any() or not red.any():
        return
    with np.errstate(all="ignore"):
        reflectance = to_reflectance_fraction(values, declared)
        rising = reflectance[:, red].mean(axis=1) > reflectance[:, blue].mean(axis=1)
    if rising.mean() >= 0.5:
        return
    other = "reflectance (fraction or percent)" if declared is Scale.ABSORBANCE else Scale.ABSORBANCE.value
    raise DataError(
        f"{source}: declared scale {declared.value}, but {int((~rising).sum())} of {len(ids)} rows (e.g. "
        f"{', '.join(str(i) for i in ids[~rising][:3])}) would give soil reflectance that falls from blue "
        f"({BLUE_NM[0]:g}-{BLUE_NM[1]:g} nm) to red ({RED_NM[0]:g}-{RED_NM[1]:g} nm), as absorbance does; "
        f"they look like {other}: declare the right --scale"
    )


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
