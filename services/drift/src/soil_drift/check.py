"""check verb: read both files, run the gate, write the JSON verdict and the figure atomically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from soil_contracts.files import atomic_path, write_text_atomic
from soil_drift.acceptance import read_acceptances, settle
from soil_drift.config import DriftParams
from soil_drift.errors import OutputError
from soil_drift.gate import check_drift
from soil_drift.inputs import load_inputs
from soil_drift.verdict import DriftVerdict


def check_files(
    reference: Path, candidate: Path, params: DriftParams, *,
    out: Path | None = None, plot: Path | None = None, warn_only: bool = False, library: Path | None = None,
) -> DriftVerdict:
    """Bad input raises before anything is written; both outputs appear together or not at all.

    ``library``: the library summary (``data/library.json``); a candidate batch it records a drift
    acceptance for turns a failure into a warning when the other batches do not drift (acceptance.py).
    """
    acceptances = read_acceptances(library) if library is not None else {}
    inputs = load_inputs(reference, candidate, params)
    verdict = settle(check_drift(inputs, params, warn_only=warn_only), reference, candidate, params, acceptances)
    text = json.dumps(verdict.to_json(), indent=2, allow_nan=False) + "\n"
    try:
        if plot is not None:
            from soil_drift.plot import plot_verdict

            with atomic_path(Path(plot)) as tmp_plot:
                plot_verdict(verdict, tmp_plot)
                _write_json(text, out)
        else:
            _write_json(text, out)
    except OSError as exc:
        raise OutputError(f"{exc.filename or out or plot}: cannot write output ({exc.strerror or exc})") from exc
    return verdict


def _write_json(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(out, text)
