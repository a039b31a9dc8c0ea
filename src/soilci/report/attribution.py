"""Drift attribution: a significant spectral effect (offset, gain, wavelength shift) is named first."""

from __future__ import annotations

import re

# The drift gate's spectral-effect tests (soil_drift.verdict.EFFECTS): instrument or preparation causes.
EFFECTS = ("spectrum level", "baseline offset", "gain", "wavelength shift")
LEVEL = "spectrum level"  # its effect says by how much the spectra are brighter or darker
MAX_LISTED = 3


def _position(band: object) -> str | None:
    match = re.search(r"-?\d+(?:\.\d+)?$", str(band or ""))
    return match.group(0) if match else None


def _where(raw: dict) -> str:
    """The band range tested (an effect's direction spans it) and the clearest moved region, if any."""
    spectra = raw.get("spectra") or {}
    first, last = _position(spectra.get("first_band")), _position(spectra.get("last_band"))
    text = f"across {first}-{last} {spectra.get('unit', '')}".strip() if first and last else "across the spectrum"
    regions = [r for r in raw.get("regions") or [] if isinstance(r, dict) and "start" in r and "end" in r]
    if regions:
        top = min(regions, key=lambda r: r.get("p_adjusted") if r.get("p_adjusted") is not None else 1.0)
        span = f"{top['start']:g}-{top['end']:g}" if top["start"] != top["end"] else f"{top['start']:g}"
        text += f", strongest in {span} {top.get('unit', '')}".rstrip()
    return text


def attribute(raw: dict) -> str:
    """``baseline offset across 350-2495 nm, strongest in 400-580 nm, then PC1, PC4``; "" without an effect.

    A drifted ``spectrum level`` comes first, as its size: ``spectra are 4.1% higher (brighter, in
    reflectance) on average than the reference; ...``.

    Args:
        raw: drift.json as decoded: ``spectra.features`` / ``spectra.components`` (name, drifted,
            p_adjusted), ``regions`` (start, end, unit) and ``spectra.first_band``/``last_band``/``unit``.
    """
    spectra = raw.get("spectra") or {}
    features = [f for f in spectra.get("features") or [] if isinstance(f, dict)]
    effects = [f["name"] for f in features if f.get("drifted") and f.get("name") in EFFECTS and f["name"] != LEVEL]
    level = next((f for f in features if f.get("drifted") and f.get("name") == LEVEL), None)
    parts = [_level(level.get("effect") or {})] if level is not None else []
    if effects:
        parts.append(f"{' and '.join(effects)} {_where(raw)}")
    if not parts:
        return ""
    components = sorted((c for c in spectra.get("components") or [] if isinstance(c, dict) and c.get("drifted")),
                        key=lambda c: c.get("p_adjusted") if c.get("p_adjusted") is not None else 1.0)
    names = [str(c.get("name")) for c in components[:MAX_LISTED]]
    more = f" and {len(components) - MAX_LISTED} more" if len(components) > MAX_LISTED else ""
    then = f", then {', '.join(names)}{more}" if names else ""
    return "; ".join(parts) + then


def _level(effect: dict) -> str:
    """``spectra are 4.1% higher (brighter, in reflectance) on average than the reference``, from the gate's
    shape-adjusted level change (soil_drift.level)."""
    change = effect.get("level_change") or 0.0
    word = "higher (brighter, in reflectance)" if change > 0 else "lower (darker, in reflectance)"
    return f"spectra are {100 * abs(change):.1f}% {word} on average than the reference"


def effects_first(top: list[dict]) -> list[dict]:
    """The drift gate's top drifted features with spectral effects moved to the front (order kept otherwise)."""
    return sorted(top, key=lambda t: t.get("name") not in EFFECTS)
