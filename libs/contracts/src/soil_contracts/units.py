"""The physically possible range of a soil property's values, per unit: the one table import checks against.

A target value outside its unit's range cannot be a measurement (a mass fraction of 1e6 %, a pH of
-3): it is a typing error, a wrong unit or a missing-value code (-999). ``soilci library import``
refuses such rows; see docs/LIBRARY.md.

Only limits that follow from what the unit means are declared, never "plausible for soils" limits,
so a real but unusual soil (a peat at 55 % organic carbon, a sulfidic soil at pH 2.5) always passes.
A unit not in the table is not guessed at: its values are imported unchecked and the batch's
``batch.yaml`` says so (``target_ranges: {column: null}``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitRange:
    """The closed interval [low, high] a value in one unit can take; ``high`` None: no upper limit.

    Attributes:
        low, high: the limits, in the unit itself.
        quantity: what the unit measures (for messages).
        reason: why values outside are impossible (the table's source).
    """

    low: float
    high: float | None
    quantity: str
    reason: str

    def holds(self, value: float) -> bool:
        """Whether ``value`` (finite) is inside the range; limits included."""
        return self.low <= value and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """``0 to 100`` or ``0 or more``."""
        return f"{self.low:g} to {self.high:g}" if self.high is not None else f"{self.low:g} or more"


_MASS_FRACTION = "a part of the sample's mass cannot be negative or exceed the whole sample (ISO 80000-9 mass fraction)"
_PH = ("pH of soil in water, CaCl2 or KCl suspension (ISO 10390:2021); the practical scale of dilute aqueous "
       "solutions at 25 degC is 0-14 (IUPAC Gold Book, pH)")
_NON_NEGATIVE = "an amount per mass or volume (a charge, a concentration, a conductivity, a density) cannot be negative"

_PERCENT = UnitRange(0.0, 100.0, "mass fraction in percent", _MASS_FRACTION)
_G_PER_KG = UnitRange(0.0, 1000.0, "mass fraction in g/kg", _MASS_FRACTION)
_MG_PER_KG = UnitRange(0.0, 1e6, "mass fraction in mg/kg", _MASS_FRACTION)
_FRACTION = UnitRange(0.0, 1.0, "mass or volume fraction (0-1)",
                      _MASS_FRACTION + "; a volume fraction likewise (ISO 80000-4)")
_VOLUME_PERCENT = UnitRange(0.0, 100.0, "volume fraction in percent",
                            "a part of the sample's volume cannot be negative or exceed the whole (ISO 80000-4)")
_PH_RANGE = UnitRange(0.0, 14.0, "pH", _PH)
_CHARGE = UnitRange(0.0, None, "exchangeable charge per mass (CEC, exchangeable cations)", _NON_NEGATIVE)
_CONDUCTIVITY = UnitRange(0.0, None, "electrical conductivity", _NON_NEGATIVE)
_DENSITY = UnitRange(0.0, None, "density", _NON_NEGATIVE)

#: Unit (as written at import, compared case-insensitively without spaces) -> its range. ``%`` is a mass
#: fraction: soil-ci's targets (SOC, clay, sand, N, CaCO3 in LimeSoDa and the OSSL) are reported so.
TARGET_UNIT_RANGES: dict[str, UnitRange] = {
    "%": _PERCENT, "percent": _PERCENT, "wt%": _PERCENT, "%w/w": _PERCENT, "g/100g": _PERCENT,
    "dag/kg": _PERCENT,
    "g/kg": _G_PER_KG, "gkg-1": _G_PER_KG, "gkg^-1": _G_PER_KG, "mg/g": _G_PER_KG, "permille": _G_PER_KG,
    "mg/kg": _MG_PER_KG, "mgkg-1": _MG_PER_KG, "mgkg^-1": _MG_PER_KG, "ppm": _MG_PER_KG,
    "g/g": _FRACTION, "kg/kg": _FRACTION, "fraction": _FRACTION, "m3/m3": _FRACTION, "cm3/cm3": _FRACTION,
    "vol%": _VOLUME_PERCENT, "%vol": _VOLUME_PERCENT, "%v/v": _VOLUME_PERCENT,
    "ph": _PH_RANGE, "phunits": _PH_RANGE,
    "cmol/kg": _CHARGE, "cmol(+)/kg": _CHARGE, "cmolc/kg": _CHARGE, "cmolkg-1": _CHARGE, "meq/100g": _CHARGE,
    "mmol/kg": _CHARGE, "mmolc/kg": _CHARGE,
    "ds/m": _CONDUCTIVITY, "ms/cm": _CONDUCTIVITY, "µs/cm": _CONDUCTIVITY, "us/cm": _CONDUCTIVITY,
    "g/cm3": _DENSITY, "t/m3": _DENSITY, "kg/m3": _DENSITY,
}


def unit_range(unit: str) -> UnitRange | None:
    """The declared range of ``unit``, or None when the table does not know it.

    >>> unit_range("g kg-1").high
    1000.0
    >>> unit_range("pH").describe()
    '0 to 14'
    >>> unit_range("mmol/L") is None
    True
    """
    return TARGET_UNIT_RANGES.get("".join(unit.split()).lower())
