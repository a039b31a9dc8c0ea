"""Bring a source spectrum to the library's canonical form: axis, scale, then grid.

- Axis: wavenumber (cm-1) and wavelength (nm) are the same quantity, nm = 1e7 / cm-1.
- Scale: reflectance fraction R, reflectance percent 100 R, apparent absorbance A = log10(1 / R).
- Grid: linear interpolation of each spectrum at the canonical positions, as ``prospectr::resample``
  with ``interpol = "linear"`` (Stevens & Ramirez-Lopez, *An introduction to the prospectr package*).
  Only bands that were measured are interpolated between (``check_sampling``): the source must cover
  the grid (nothing is extrapolated), have no gap wider than its own sampling allows, and be sampled
  about as finely as the grid, all to the precision its band headers are written with.
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


# A step more than this many times the sampling step around it (the file's own, or the grid's) means at
# least two bands are missing there: one missing band is bridged as any resampling does, more are made up.
GAP_FACTOR = 2.0
LOCAL_STEPS = 10  # steps on each side whose median is a band's "own" sampling step (instruments change it)


def _to_grid_units(positions: np.ndarray, axis: SpectralAxis, grid_axis: SpectralAxis) -> np.ndarray:
    return convert_axis(np.asarray(positions, np.float64), axis, grid_axis)


def half_ulp(positions: np.ndarray, axis: SpectralAxis, grid_axis: SpectralAxis, decimals: int) -> np.ndarray:
    """How far a header position written with ``decimals`` decimals may be from the true one, in grid units:
    half a unit in its last place, through the derivative of nm = 1e7 / cm-1 when the axes differ."""
    half = 0.5 * 10.0 ** -decimals
    if axis is grid_axis:
        return np.full(len(positions), half)
    return half * 1e7 / np.asarray(positions, np.float64) ** 2


def _span(a: float, b: float, unit: str) -> str:
    return f"{min(a, b):.6g}-{max(a, b):.6g} {unit}"


def _both(a: float, b: float, axis: SpectralAxis, grid_axis: SpectralAxis) -> str:
    """``a-b unit`` on the file's axis, with the grid's units beside it when they differ."""
    if axis is grid_axis:
        return _span(a, b, axis.unit)
    ga, gb = _to_grid_units(np.array([a, b]), axis, grid_axis)
    return f"{_span(a, b, axis.unit)} ({_span(ga, gb, grid_axis.unit)})"


def check_sampling(positions: np.ndarray, axis: SpectralAxis, grid: Grid, grid_axis: SpectralAxis,
                   decimals: int, source: str) -> None:
    """Refuse a file whose bands would leave grid bands unmeasured: import never makes up bands.

    Three checks, each to the precision the band headers are written with (``decimals``: a header
    ``wn_3797.1`` is 3797.1 +- 0.05 cm-1, which is +- 0.0035 nm at 2633 nm):

    - coverage: the bands span the grid's range (nothing is extrapolated);
    - gaps: no step between neighbouring bands is more than ``GAP_FACTOR`` times the file's own step
      around it (median of ``LOCAL_STEPS`` steps each side), where it overlaps the grid: a detector gap or
      cut-out water bands are missing data, not something to interpolate across;
    - resolution: every grid band lies between two measured bands at most ``GAP_FACTOR`` grid steps
      apart, so a file sampled far more coarsely than the grid (two columns for 430 bands) is refused.

    Args:
        positions: (p,) band positions as the file's headers give them, on ``axis`` (nm or cm-1).
        decimals: decimals of the most precise band header (0 for ``350``, 1 for ``wn_3797.1``).

    Raises:
        DataError: names the missing range, gap or coarse stretch in the file's and the grid's units.
    """
    own = np.sort(np.asarray(positions, np.float64))
    target = np.asarray(grid.positions())
    if len(own) < 2:
        raise DataError(f"{source}: the file has one band ({own[0]:g} {axis.unit}); a spectrum needs the grid's "
                        f"{_span(target[0], target[-1], grid_axis.unit)} measured")
    x_raw = _to_grid_units(own, axis, grid_axis)
    order = np.argsort(x_raw)
    x, tol = x_raw[order], half_ulp(own, axis, grid_axis, decimals)[order]
    eps = 1e-9 * max(abs(target[-1]), 1.0)
    unit = grid_axis.unit
    missing = []
    if x[0] - tol[0] > target[0] + eps:
        missing.append(_span(target[0], x[0], unit))
    if x[-1] + tol[-1] < target[-1] - eps:
        missing.append(_span(x[-1], target[-1], unit))
    if missing:
        raise DataError(f"{source}: the file's bands cover {_both(own[0], own[-1], axis, grid_axis)}, but the "
                        f"library's grid needs {_span(target[0], target[-1], unit)} (params.yaml library.grid): "
                        f"missing {' and '.join(missing)} (no band there); nothing is extrapolated: import a file "
                        "that covers the grid, or narrow library.grid")
    if len(own) >= 3:
        steps = np.diff(own)
        local = np.array([np.median(steps[max(0, i - LOCAL_STEPS):i + LOCAL_STEPS + 1]) for i in range(len(steps))])
        ulp = 10.0 ** -decimals  # the difference of two rounded headers is off by up to one unit
        wide = np.flatnonzero(steps > GAP_FACTOR * local + ulp)
        gx = _to_grid_units(np.column_stack([own[wide], own[wide + 1]]), axis, grid_axis)
        inside = [(i, g) for i, g in zip(wide, gx) if g.min() < target[-1] and g.max() > target[0]]
        if inside:
            named = "; ".join(f"none between {_both(own[i], own[i + 1], axis, grid_axis)}, where it has one every "
                              f"{local[i]:.3g} {axis.unit}" for i, _ in inside[:3])
            more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
            grid_bands = sum(int(((target > g.min()) & (target < g.max())).sum()) for _, g in inside)
            raise DataError(f"{source}: the file has gaps in its bands ({named}{more}): {grid_bands} grid band(s) "
                            "there would be filled by interpolation, never measured; import the missing bands, "
                            "or a library.grid that leaves the range out")
    j = np.clip(np.searchsorted(x, target, side="right") - 1, 0, len(x) - 2)
    width = x[j + 1] - x[j]
    slack = tol[j] + tol[j + 1]
    measured = np.minimum(np.abs(target - x[j]) - tol[j], np.abs(x[j + 1] - target) - tol[j + 1]) <= eps
    coarse = (width > GAP_FACTOR * grid.step + slack) & ~measured
    if coarse.any():
        worst = int(np.argmax(np.where(coarse, width, 0)))
        raise DataError(
            f"{source}: the file has {len(own)} band(s), one only every {width[worst]:.4g} {unit} at its widest "
            f"(between {x[j[worst]]:.6g} and {x[j[worst] + 1]:.6g} {unit}), while the "
            f"library's grid has one every {grid.step:g} {unit}: {int(coarse.sum())} of its {len(target)} bands "
            f"would be filled by interpolation, never measured; import a file sampled at least every "
            f"{GAP_FACTOR * grid.step:g} {unit}, or set a coarser library.grid.step")


def resample(positions: np.ndarray, values: np.ndarray, grid: Grid, source: str,
             tolerance: float = 0.0, unit: str = "") -> np.ndarray:
    """(n, p) spectra at ``positions`` -> (n, g) at the grid's positions, by linear interpolation.

    ``check_sampling`` decides whether the file may be resampled; the grid's edges may lie up to
    ``tolerance`` (the headers' precision, in the grid's ``unit``) outside the bands, and take the edge
    band's value.

    Raises:
        DataError: the source range does not cover the grid (beyond ``tolerance``).
    """
    order = np.argsort(positions)
    x, y = positions[order], values[:, order]
    target = np.asarray(grid.positions())
    tol = max(tolerance, 1e-6 * max(abs(grid.step), 1.0))
    if x[0] > target[0] + tol or x[-1] < target[-1] - tol:
        raise DataError(f"{source}: bands cover {x[0]:g}-{x[-1]:g} {unit}, but the canonical grid needs "
                        f"{target[0]:g}-{target[-1]:g} {unit} (params.yaml library.grid); nothing is extrapolated")
    return np.vstack([np.interp(target, x, row) for row in y])
