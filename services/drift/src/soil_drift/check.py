"""check verb: read both files, run the gate, write the JSON verdict and the figure atomically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from soil_contracts.files import atomic_paths
from soil_drift.acceptance import read_acceptances, settle
from soil_drift.config import DriftParams
from soil_drift.errors import OutputError
from soil_drift.gate import check_drift
from soil_drift.inputs import load_inputs
from soil_drift.threads import gate_threads, limited_threads
from soil_drift.verdict import DriftVerdict


def check_files(
    reference: Path, candidate: Path, params: DriftParams, *,
    out: Path | None = None, plot: Path | None = None, warn_only: bool = False, library: Path | None = None,
) -> DriftVerdict:
    """Bad input raises before anything is written; both outputs appear together or not at all.

    A destination that cannot be written (a directory, an unwritable folder) is OutputError (exit 2),
    and then neither output is written (``soil_contracts.files.atomic_paths``). The numeric libraries
    run with ``threads.gate_threads()`` threads (one unless SOIL_DRIFT_THREADS says more).
    ``library``: the library summary (``data/library.json``); a candidate batch it records a drift
    acceptance for turns a failure into a warning when the other batches do not drift (acceptance.py).
    """
    acceptances = read_acceptances(library) if library is not None else {}
    with limited_threads(gate_threads()):
        inputs = load_inputs(reference, candidate, params)
        verdict = settle(check_drift(inputs, params, warn_only=warn_only), reference, candidate, params,
                         acceptances)
    text = json.dumps(verdict.to_json(), indent=2, allow_nan=False) + "\n"
    try:
        with atomic_paths([out, plot]) as (tmp_out, tmp_plot):
            if tmp_plot is not None:
                from soil_drift.plot import plot_verdict

                plot_verdict(verdict, tmp_plot)
            if tmp_out is not None:
                tmp_out.write_text(text)
    except OSError as exc:
        raise OutputError(f"{exc.filename or out or plot}: cannot write output ({exc.strerror or exc})") from exc
    if out is None:
        sys.stdout.write(text)
    return verdict
