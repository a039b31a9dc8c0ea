"""Assembling the stage inputs: what the branch adds is the candidate, every batch is trained on once."""

from __future__ import annotations

import numpy as np
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
