"""The two samples the tests read, as arrays: what the gate needs, without pandas or a file reader.

``inputs.validate_pair`` builds one from two files (the CLI); the model API builds one from its
calibration sample and its window of recent requests, so both run the same tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from soil_contracts.bands import spectral_axis


@dataclass
class DriftInputs:
    """Validated reference and candidate data, split into spectra and scalar columns."""

    reference_path: str
    candidate_path: str
    n_reference: int
    n_candidate: int
    bands: list[str]
    positions: np.ndarray
    reference_spectra: np.ndarray  # float32, rows x bands
    candidate_spectra: np.ndarray
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # present values only
    missing: dict[str, tuple[int, int]] = field(default_factory=dict)  # column -> (reference, candidate) NaNs
    categorical: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    key_column: str | None = None

    @property
    def band_unit(self) -> str:
        """``nm`` or ``cm-1``, from the first band; ``nm`` without bands."""
        return spectral_axis(self.bands[:1]).unit if self.bands else "nm"
