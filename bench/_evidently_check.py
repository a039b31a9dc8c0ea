"""Evidently's data-drift preset on two Parquet files; run by bench_drift.py in Evidently's own venv.

Prints one JSON line: seconds spent in Report.run, drifted column count and share, and the
dataset-level verdict of the preset (drift when at least half of the columns drift).
"""

import json
import sys
import time

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def main() -> None:
    reference = pd.read_parquet(sys.argv[1]).drop(columns=["sample_id"], errors="ignore")
    candidate = pd.read_parquet(sys.argv[2]).drop(columns=["sample_id"], errors="ignore")
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(candidate, reference)
    seconds = time.perf_counter() - start
    count = next(m for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
    share = float(count["value"]["share"])
    print(json.dumps({"seconds": seconds, "drifted_columns": int(count["value"]["count"]),
                      "share": share, "drift": share >= 0.5}))


if __name__ == "__main__":
    main()
