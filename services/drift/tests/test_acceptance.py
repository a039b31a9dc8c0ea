"""Per-batch drift acceptance: a recorded acceptance turns drift into a warning for its own batch only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soil_contracts.library import BatchState, LibrarySummary
from soil_drift.cli import main

ACCEPTED = {"reason": "new instrument, offset checked against the lab's standards", "by": "lead@example.org"}


def offset(frame: pd.DataFrame, batch: str, share: float) -> pd.DataFrame:
    """``frame`` as batch ``batch`` with a flat baseline offset of ``share`` of the mean signal."""
    bands = [c for c in frame.columns if c.startswith("wl_")]
    shift = share * float(np.mean(frame[bands].to_numpy()))
    return frame.assign(**{b: frame[b] + shift for b in bands}, batch=batch, sample_id=frame.sample_id + f"-{batch}")


def write_library(path: Path, accepted: dict[str, dict]) -> Path:
    """A library summary whose batches ``accepted`` names carry an acceptance (the rest of it is not read)."""
    LibrarySummary(
        target="SOC_target", unit="%", benchmark_sha256="f" * 64, benchmark_rows=92, reference_rows=322,
        candidate_rows=0, training_rows=322,
        batches=[BatchState(id=b, status="added", accepted_drift=a["reason"], accepted_by=a["by"])
                 for b, a in accepted.items()],
    ).save(path)
    return path


def run(tmp_path: Path, reference: pd.DataFrame, candidate: pd.DataFrame, accepted: dict[str, dict]):
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    candidate.to_parquet(tmp_path / "cand.parquet", index=False)
    library = write_library(tmp_path / "library.json", accepted)
    out = tmp_path / "drift.json"
    code = main(["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"), "--library", str(library),
                 "--out", str(out)])
    return code, json.loads(out.read_text())


def test_an_accepted_offset_batch_beside_a_clean_batch_warns_and_says_who_accepted_it(
        tmp_path, reference, incoming):
    candidate = pd.concat([offset(incoming, "lab-o", 0.05), incoming.assign(batch="lab-clean")], ignore_index=True)
    code, verdict = run(tmp_path, reference, candidate, {"lab-o": ACCEPTED})
    assert code == 0 and verdict["status"] == "warn" and verdict["drift_detected"] is True
    assert verdict["acceptance"]["accepted"] == [{"batch": "lab-o", "rows": len(incoming), **ACCEPTED}]
    others = verdict["acceptance"]["others"]
    assert (others["batches"], others["rows"], others["result"]) == (["lab-clean"], len(incoming), "no drift")
    assert verdict["summary"].startswith(f"Drift accepted for lab-o (by {ACCEPTED['by']}: {ACCEPTED['reason']})")
    assert "show no drift on their own" in verdict["summary"]


def test_a_drifting_batch_without_acceptance_still_fails_beside_an_accepted_one(tmp_path, reference, incoming):
    candidate = pd.concat([offset(incoming, "lab-o", 0.05), offset(incoming, "lab-x", -0.05)], ignore_index=True)
    code, verdict = run(tmp_path, reference, candidate, {"lab-o": ACCEPTED})
    assert code == 1 and verdict["status"] == "fail"
    assert verdict["acceptance"]["others"]["result"] == "drift"
    assert "the batches without acceptance, lab-x (46 rows), drift on their own" in verdict["summary"]


def test_drift_without_any_acceptance_fails_as_before(tmp_path, reference, incoming):
    code, verdict = run(tmp_path, reference, offset(incoming, "lab-x", 0.05), {"some-other-batch": ACCEPTED})
    assert code == 1 and verdict["status"] == "fail" and "acceptance" not in verdict


def test_when_every_new_batch_is_accepted_the_gate_warns(tmp_path, reference, incoming):
    code, verdict = run(tmp_path, reference, offset(incoming, "lab-o", 0.05), {"lab-o": ACCEPTED})
    assert code == 0 and verdict["status"] == "warn"
    assert verdict["acceptance"]["others"] is None
    assert verdict["summary"].startswith("Drift accepted for every new batch: lab-o (by lead@example.org")


def test_batches_without_acceptance_too_small_to_test_alone_keep_the_failure(tmp_path, reference, incoming):
    small = incoming.head(5).assign(batch="lab-small")
    candidate = pd.concat([offset(incoming, "lab-o", 0.05), small], ignore_index=True)
    code, verdict = run(tmp_path, reference, candidate, {"lab-o": ACCEPTED})
    assert code == 1 and verdict["status"] == "fail"
    assert verdict["acceptance"]["others"]["result"] == "too few rows"
    assert "fewer than the 20 rows (drift.min_rows) needed to clear them" in verdict["summary"]


def test_an_acceptance_of_a_batch_that_does_not_drift_changes_nothing(tmp_path, reference, incoming):
    code, verdict = run(tmp_path, reference, incoming.assign(batch="lab-o"), {"lab-o": ACCEPTED})
    assert code == 0 and verdict["status"] == "pass"
    assert verdict["acceptance"]["accepted"][0]["batch"] == "lab-o"  # recorded for the report all the same


@pytest.mark.parametrize("content", [None, "{not json", '{"kind": "something else"}'])
def test_a_missing_or_unreadable_library_summary_is_bad_input(tmp_path, reference, incoming, content, capsys):
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    incoming.to_parquet(tmp_path / "cand.parquet", index=False)
    library = tmp_path / "library.json"
    if content is not None:
        library.write_text(content)
    code = main(["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"), "--library", str(library),
                 "--out", str(tmp_path / "drift.json")])
    assert code == 2 and "library.json" in capsys.readouterr().err
    assert not (tmp_path / "drift.json").exists()
