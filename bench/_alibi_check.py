"""alibi-detect's KSDrift or MMDDrift on the spectra of two Parquet files; run by bench_drift.py in alibi's own venv.

    python _alibi_check.py REFERENCE CANDIDATE [--detector ks|mmd]

A whole process, as the gate's CLI is timed: imports, reading the band columns, the detector's fit
and ``predict``. ``ks`` (KSDrift): one KS test per band, Bonferroni-corrected at p_val; numpy +
scipy only. ``mmd`` (MMDDrift, TensorFlow backend, alibi-detect's defaults: Gaussian RBF kernel with
the median-heuristic bandwidth, 100 permutations): one test on the whole spectrum; it holds the
(n_ref + n_cand)^2 float32 kernel matrix, so before importing TensorFlow it compares a lower bound of
that memory with MemAvailable and, when it would not fit, prints a "skipped" line and exits 3 rather
than pushing a shared machine into the OOM killer. Prints one JSON line with the verdict.
"""

import json
import sys

import numpy as np
import pyarrow.parquet as pq

BAND_PREFIXES = ("wl_", "wn_")
P_VAL = 0.025  # the gate's drift.alpha
# Kernel matrix, its pairwise squared distances and one permuted copy alive at once (float32).
MMD_MATRICES = 3


def spectra(path: str) -> np.ndarray:
    table = pq.read_table(path)
    bands = [name for name in table.column_names if name.startswith(BAND_PREFIXES)]
    return np.column_stack([table.column(b).to_numpy() for b in bands]).astype(np.float32)


def mem_available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_ks(reference: np.ndarray, candidate: np.ndarray) -> dict:
    from alibi_detect.cd import KSDrift

    data = KSDrift(reference, p_val=P_VAL).predict(candidate)["data"]
    return {"drift": bool(data["is_drift"]), "drifted_bands": int(np.sum(data["p_val"] < data["threshold"])),
            "bands": int(reference.shape[1])}


def run_mmd(reference: np.ndarray, candidate: np.ndarray) -> dict:
    from alibi_detect.cd import MMDDrift

    data = MMDDrift(reference, backend="tensorflow", p_val=P_VAL).predict(candidate)["data"]
    return {"drift": bool(data["is_drift"]), "p_val": float(data["p_val"]), "bands": int(reference.shape[1])}


def main() -> int:
    args = sys.argv[1:]
    detector = "ks"
    if "--detector" in args:
        at = args.index("--detector")
        detector = args[at + 1]
        del args[at:at + 2]
    reference, candidate = spectra(args[0]), spectra(args[1])
    if detector == "mmd":
        n = len(reference) + len(candidate)
        need, have = MMD_MATRICES * 4 * n * n, mem_available_bytes()
        if need > have:
            print(json.dumps({"skipped": f"the {n:,}x{n:,} kernel matrices need >= {need / 2**30:.0f} GiB, "
                                         f"{have / 2**30:.0f} GiB available"}))
            return 3
        result = run_mmd(reference, candidate)
    else:
        result = run_ks(reference, candidate)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
