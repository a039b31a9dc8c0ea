"""evaluate: contract metrics, predictions and plots on the benchmark set, and the rmse_max gate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from soil_trainer.cli import main

CONTRACT_METRICS = {"rmse", "mae", "bias", "r2", "rpd", "rpiq", "n_benchmark", "n_train", "n_dropped",
                    "target", "unit", "benchmark_sha256", "interval_nominal", "interval_coverage", "out_of_domain_rate"}


def test_evaluate_writes_contract_metrics_predictions_and_plots(workspace):
    metrics = json.loads(workspace.metrics.read_text())
    assert set(metrics) == CONTRACT_METRICS
    benchmark = pd.read_parquet(workspace.data / "benchmark.parquet")
    predictions = pd.read_csv(workspace.predictions)
    assert list(predictions.columns) == ["sample_id", "observed", "predicted", "residual"]
    assert predictions["sample_id"].tolist() == benchmark["sample_id"].tolist()
    # One sign convention everywhere: residual = predicted - observed, so its mean is the bias.
    np.testing.assert_allclose(predictions["residual"], predictions["predicted"] - predictions["observed"], atol=2e-6)
    assert metrics["bias"] == pytest.approx(predictions["residual"].mean(), abs=1e-5)
    rmse = float(np.sqrt(np.mean(predictions["residual"] ** 2)))
    assert metrics["rmse"] == pytest.approx(rmse, abs=1e-5)
    assert metrics["rpd"] == pytest.approx(benchmark["SOC_target"].std() / metrics["rmse"], rel=1e-4)
    assert metrics["n_benchmark"] == len(benchmark) == 92
    # serving's context on held-out data: 90% intervals cover about 90%, few benchmark spectra flagged
    assert metrics["interval_nominal"] == 0.9 and 0.85 <= metrics["interval_coverage"] <= 0.95
    assert 0 <= metrics["out_of_domain_rate"] <= 0.10
    histogram = pd.read_csv(workspace.plots / "prediction_error.csv")
    assert histogram["count"].sum() == len(benchmark)
    assert sorted(p.name for p in workspace.plots.iterdir()) == ["prediction_error.csv"]  # DVC draws the plots


def test_evaluate_twice_gives_identical_files(workspace, tmp_path):
    assert main(workspace.evaluate_args(tmp_path / "m.json", tmp_path / "p.csv")) == 0
    assert (tmp_path / "m.json").read_bytes() == workspace.metrics.read_bytes()
    assert (tmp_path / "p.csv").read_bytes() == workspace.predictions.read_bytes()


def test_benchmark_rows_without_a_target_are_dropped_and_counted(workspace, tmp_path):
    benchmark = pd.read_parquet(workspace.data / "benchmark.parquet")
    benchmark.loc[[0, 7], "SOC_target"] = np.nan
    benchmark.to_parquet(tmp_path / "benchmark.parquet", index=False)
    args = workspace.evaluate_args(tmp_path / "m.json", tmp_path / "p.csv")
    args[args.index("--benchmark") + 1] = str(tmp_path / "benchmark.parquet")
    assert main(args) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_benchmark"] == len(benchmark) - 2
    assert metrics["n_dropped"] == workspace.n_missing + 2
    kept = pd.read_csv(tmp_path / "p.csv")["sample_id"].tolist()
    assert kept == benchmark["sample_id"].drop(index=[0, 7]).tolist()


def test_rmse_above_its_ceiling_fails_the_gate_after_writing_metrics(workspace, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(workspace.params.read_text().replace("rmse_max: null", "rmse_max: 0.1"))
    args = workspace.evaluate_args(tmp_path / "m.json", tmp_path / "p.csv")
    args[args.index("--params") + 1] = str(params)
    assert main(args) == 1
    assert "above evaluate.rmse_max 0.1" in capsys.readouterr().err
    assert json.loads((tmp_path / "m.json").read_text())["rmse"] > 0.1


def test_a_plots_dir_that_is_a_file_writes_no_output(workspace, tmp_path, capsys):
    # The case: --plots-dir naming a file used to fail after metrics.json was written.
    blocker = tmp_path / "plots"
    blocker.write_text("")
    args = workspace.evaluate_args(tmp_path / "out" / "m.json", tmp_path / "out" / "p.csv")
    args[args.index("--plots-dir") + 1] = str(blocker)
    assert main(args) == 2
    assert f"{blocker}: cannot write output (Not a directory); nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and blocker.read_text() == ""
