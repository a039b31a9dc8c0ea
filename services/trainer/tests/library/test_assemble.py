"""Assembling the stage inputs: what the branch adds is the candidate, every batch is trained on once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soil_contracts.library import BaseLibrary, Scale
from soil_trainer.errors import DataError
from soil_trainer.library.assemble import assemble
from soil_trainer.library.importer import BatchRequest, import_batch
from soil_trainer.library.store import read_batch

from .conftest import UNITS


def add(root, spec, batch_id, folds, *, benchmark=False, targets=UNITS, source="limesoda:SSP.460"):
    req = BatchRequest(source=source, batch_id=batch_id, instrument="i", lab="l", date="d", axis=None,
                       scale=Scale.REFLECTANCE_PERCENT, targets=targets, folds=folds)
    return import_batch(req, spec, root, benchmark=benchmark).batch


@pytest.fixture(scope="module")
def library(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("lib")
    bench = add(root, spec, "benchmark", [1, 2], benchmark=True)
    first = add(root, spec, "campaign-1", [4, 5, 6, 7, 8, 9, 10])
    second = add(root, spec, "campaign-2", [3])
    return root, bench, first, second


def test_the_candidate_is_what_the_branch_adds_and_training_keeps_every_batch(library, spec):
    _, bench, first, second = library
    base = BaseLibrary(ref="origin/main", commit="abc", batches={first.meta.id: first.meta.content_sha256},
                       benchmark_sha256=bench.meta.content_sha256)
    out = assemble([first, second], bench, base, spec, "SOC_target", "%")
    assert len(out.reference) == 322 and set(out.reference.batch) == {"campaign-1"}
    assert len(out.candidate) == 46 and set(out.candidate.batch) == {"campaign-2"}
    assert len(out.training) == 368 and len(out.benchmark) == 92
    assert {s.id: s.status for s in out.batches} == {"campaign-1": "unchanged", "campaign-2": "added"}
    assert not out.benchmark_changed


def test_a_removed_or_replaced_batch_is_explicit(library, spec):
    _, bench, first, _second = library
    base = BaseLibrary(ref="main", commit="abc", batches={first.meta.id: "0" * 64, "old": "1" * 64},
                       benchmark_sha256="2" * 64)
    out = assemble([first], bench, base, spec, "SOC_target", "%")
    assert {s.id: s.status for s in out.batches} == {"campaign-1": "replaced", "old": "removed"}
    assert len(out.candidate) == 322 and out.reference.empty and out.benchmark_changed


def test_rows_waiting_for_lab_values_are_tested_for_drift_but_not_trained_on(tmp_path, spec, ssp460):
    root = tmp_path
    bench = add(root, spec, "benchmark", [1, 2], benchmark=True)
    rows = ssp460[ssp460.fold == 3].copy()
    rows.loc[rows.index[:6], "SOC_target"] = np.nan
    bands = [c for c in rows.columns if c.startswith("wl_")]
    path = tmp_path / "pending.csv"
    rows[["sample_id", "SOC_target", *bands]].to_csv(path, index=False)
    batch = add(root, spec, "pending", None, targets={"SOC_target": "%"}, source=str(path))
    out = assemble([batch], bench, BaseLibrary(ref="main"), spec, "SOC_target", "%")
    assert len(out.candidate) == 46 and len(out.training) == 40
    (status,) = out.batches
    assert status.pending == 6 and status.trained == 40


def test_a_sample_measured_twice_is_trained_on_once_and_reported(tmp_path, spec, ssp460):
    root = tmp_path
    bench = add(root, spec, "benchmark", [1, 2], benchmark=True)
    first = add(root, spec, "campaign-1", [4])
    again = ssp460[ssp460.fold == 4].head(5).copy()
    again["sample_id"] = [f"rescan-{i}" for i in range(5)]
    bands = [c for c in again.columns if c.startswith("wl_")]
    path = tmp_path / "rescan.csv"
    again[["sample_id", "SOC_target", *bands]].to_csv(path, index=False)
    rescans = add(root, spec, "rescans", None, targets={"SOC_target": "%"}, source=str(path))
    out = assemble([first, rescans], bench, BaseLibrary(ref="main"), spec, "SOC_target", "%")
    assert len(out.training) == 46
    assert [d["sample"] for d in out.duplicates] == [f"rescan-{i}" for i in range(5)]
    assert {s.id: s.duplicates for s in out.batches} == {"campaign-1": 0, "rescans": 5}


def test_one_deduplicated_set_feeds_the_gate_and_training(library, spec, tmp_path):
    """The same samples as two new batches, and new copies of reference samples, count once everywhere."""
    root, bench, first, second = library
    again = add(root, spec, "campaign-2-again", [3])  # the same 46 samples imported a second time
    rescans = first.frame.head(5).copy()  # 5 reference samples, re-submitted under new ids
    rescans["sample_id"] = [f"rescan-{i}" for i in range(5)]
    path = tmp_path / "rescans.csv"
    rescans.to_csv(path, index=False)
    resubmitted = add(root, spec, "rescans", None, targets={"SOC_target": "%"}, source=str(path))
    base = BaseLibrary(ref="main", batches={first.meta.id: first.meta.content_sha256},
                       benchmark_sha256=bench.meta.content_sha256)
    once = assemble([first, second], bench, base, spec, "SOC_target", "%")
    out = assemble([first, second, again, resubmitted], bench, base, spec, "SOC_target", "%")
    assert len(out.candidate) == 46 and set(out.candidate.batch) == {"campaign-2"}
    assert out.candidate.sample_id.tolist() == once.candidate.sample_id.tolist()
    assert len(out.reference) == 322 and len(out.training) == 368 == len(out.reference) + len(out.candidate)
    counts = {s.id: (s.rows, s.duplicates, s.pending, s.trained) for s in out.batches}
    assert counts == {"campaign-1": (322, 0, 0, 322), "campaign-2": (46, 0, 0, 46),
                      "campaign-2-again": (46, 46, 0, 0), "rescans": (5, 5, 0, 0)}
    assert {d["of_batch"] for d in out.duplicates if d["batch"] == "rescans"} == {"campaign-1"}


def test_a_batch_without_the_target_or_in_another_unit_is_refused(library, spec):
    _root, bench, first, _ = library
    with pytest.raises(DataError, match="SOC_target is in '%', params.yaml prepare.unit says 'g/kg'"):
        assemble([first], bench, BaseLibrary(ref="main"), spec, "SOC_target", "g/kg")
    with pytest.raises(DataError, match="no target 'SOM_target'"):
        assemble([first], bench, BaseLibrary(ref="main"), spec, "SOM_target", "%")


def test_a_library_file_edited_by_hand_is_refused_on_read(library, spec):
    _root, _, first, _ = library
    import pandas as pd

    path = first.path / "spectra.parquet"
    frame = pd.read_parquet(path)
    saved = path.read_bytes()
    frame.loc[0, "SOC_target"] = 99.0
    frame.to_parquet(path, index=False)
    try:
        with pytest.raises(DataError, match="content differs from batch.yaml's content_sha256"):
            read_batch(first.path, spec)
    finally:
        path.write_bytes(saved)


def csv_batch(root, spec, tmp_path, batch_id, rows):
    """``rows`` (SSP.460 rows, SOC_target NaN where the lab value is pending) imported as a lab's CSV export."""
    bands = [c for c in rows.columns if c.startswith("wl_")]
    path = tmp_path / f"{batch_id}.csv"
    rows[["sample_id", "SOC_target", *bands]].to_csv(path, index=False)
    return add(root, spec, batch_id, None, targets={"SOC_target": "%"}, source=str(path))


def counts(out):
    return {s.id: (s.rows, s.pending, s.duplicates, s.trained, s.filled, s.conflicts) for s in out.batches}


def test_lab_values_sent_later_as_a_new_batch_are_trained_on(tmp_path, spec, ssp460):
    """The trial's input: p1 imports fold 3 without lab values, p2 the same spectra with them. The first copy
    used to be kept whatever it held, so the 46 values were dropped ("46 duplicates, 0 trained")."""
    root = tmp_path
    bench = add(root, spec, "benchmark", [1, 2], benchmark=True)
    fold3 = ssp460[ssp460.fold == 3]
    p1 = csv_batch(root, spec, tmp_path, "p1", fold3.assign(SOC_target=np.nan))
    p2 = csv_batch(root, spec, tmp_path, "p2", fold3.assign(sample_id=fold3.sample_id + "-values"))
    base_with_p1 = BaseLibrary(ref="main", batches={p1.meta.id: p1.meta.content_sha256},
                               benchmark_sha256=bench.meta.content_sha256)
    for base in (base_with_p1, BaseLibrary(ref="main")):  # p1 merged first, or both in one PR
        out = assemble([p1, p2], bench, base, spec, "SOC_target", "%")
        assert len(out.training) == 46 and set(out.training.batch) == {"p2"}
        assert out.training.SOC_target.tolist() == fold3.SOC_target.tolist()
        assert counts(out) == {"p1": (46, 0, 46, 0, 46, 0), "p2": (46, 0, 0, 46, 0, 0)}
        assert {d["kind"] for d in out.duplicates} == {"filled"} and {d["of_batch"] for d in out.duplicates} == {"p2"}
        # The gate tests each spectrum once, in its first copy: p1's. At the base, p1 is the reference and
        # p2 brings no new spectrum; in one PR, both are new and p1's copies are the candidate.
        gate = out.reference if base is base_with_p1 else out.candidate
        assert len(gate) == 46 and set(gate.batch) == {"p1"}
        assert len(out.reference) + len(out.candidate) == 46
        assert len(out.training) == len(out.reference) + len(out.candidate) - sum(s.pending for s in out.batches)
        assert all(s.rows == s.pending + s.duplicates + s.trained for s in out.batches)


def test_a_labelled_copy_later_in_the_same_batch_fills_a_pending_row(tmp_path, spec, ssp460):
    root = tmp_path
    bench = add(root, spec, "benchmark", [1, 2], benchmark=True)
    fold3 = ssp460[ssp460.fold == 3]
    pending = fold3.head(10).assign(SOC_target=np.nan)
    values = fold3.head(10).assign(sample_id=fold3.head(10).sample_id + "-values")
    batch = csv_batch(root, spec, tmp_path, "mixed", pd.concat([pending, fold3.iloc[10:], values]))
    out = assemble([batch], bench, BaseLibrary(ref="main"), spec, "SOC_target", "%")
    assert counts(out) == {"mixed": (56, 0, 10, 46, 10, 0)}
    assert len(out.training) == 46 and out.training.SOC_target.notna().all()
    assert len(out.candidate) == 46 and out.candidate.SOC_target.isna().sum() == 10  # the gate's first copies


def test_two_lab_values_for_one_spectrum_keep_the_first_and_list_the_conflict(tmp_path, spec, ssp460):
    root = tmp_path
    bench = add(root, spec, "benchmark", [1, 2], benchmark=True)
    fold3 = ssp460[ssp460.fold == 3]
    first = csv_batch(root, spec, tmp_path, "lab-a", fold3)
    again = fold3.head(4).assign(sample_id=fold3.head(4).sample_id + "-b")
    again.loc[again.index[:3], "SOC_target"] = again.SOC_target.iloc[:3] + 0.5  # 3 differ, 1 agrees
    second = csv_batch(root, spec, tmp_path, "lab-b", again)
    out = assemble([first, second], bench, BaseLibrary(ref="main"), spec, "SOC_target", "%")
    assert counts(out) == {"lab-a": (46, 0, 0, 46, 0, 0), "lab-b": (4, 0, 4, 0, 0, 3)}
    assert out.training.SOC_target.tolist() == fold3.SOC_target.tolist()  # the first labelled copy's values
    conflicts = [d for d in out.duplicates if d["kind"] == "conflict"]
    assert [(d["sample"], d["of"]) for d in conflicts] == [
        (f"{s}-b", s) for s in fold3.sample_id.head(3)]
    assert all(d["value"] == pytest.approx(d["of_value"] + 0.5) for d in conflicts)


def test_a_replaced_batch_is_tested_against_the_batches_left_unchanged(library, spec):
    _, bench, first, second = library
    base = BaseLibrary(ref="main", batches={first.meta.id: first.meta.content_sha256, second.meta.id: "0" * 64},
                       benchmark_sha256=bench.meta.content_sha256)
    out = assemble([first, second], bench, base, spec, "SOC_target", "%")
    assert {s.id: s.status for s in out.batches} == {"campaign-1": "unchanged", "campaign-2": "replaced"}
    assert len(out.candidate) == 46 and set(out.candidate.batch) == {"campaign-2"}
    assert len(out.reference) == 322 and set(out.reference.batch) == {"campaign-1"}
