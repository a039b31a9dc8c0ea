"""alibi-detect's KSDrift on the spectra of two Parquet files; run by bench_drift.py in alibi's own venv.

A whole process, as the gate's CLI is timed: imports, reading the band columns, the detector's fit
(``KSDrift(x_ref)``) and ``predict`` (one KS test per band, Bonferroni-corrected at p_val). Prints
one JSON line with the verdict and the number of drifted bands.
"""

import json
import sys

import numpy as np
import pyarrow.parquet as pq
from alibi_detect.cd import KSDrift

BAND_PREFIXES = ("wl_", "wn_")
P_VAL = 0.025  # the gate's drift.alpha


def spectra(path: str) -> np.ndarray:
    table = pq.read_table(path)
    bands = [name for name in table.column_names if name.startswith(BAND_PREFIXES)]
    return np.column_stack([table.column(b).to_numpy() for b in bands]).astype(np.float32)


def main() -> None:
    reference, candidate = spectra(sys.argv[1]), spectra(sys.argv[2])
    detector = KSDrift(reference, p_val=P_VAL)
    data = detector.predict(candidate)["data"]
    print(json.dumps({"drift": bool(data["is_drift"]), "drifted_bands": int(np.sum(data["p_val"] < data["threshold"])),
                      "bands": int(reference.shape[1])}))


if __name__ == "__main__":
    main()
