"""Choosing the pipeline by inner CV: the components path, the rule, determinism, and no say for the benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.cross_decomposition import PLSRegression

from soil_contracts.model import ModelMetadata
from soil_trainer.cli import main
from soil_trainer.config import TrainParams
from soil_trainer.dataset import load_limesoda
from soil_trainer.model import fit_model
from soil_trainer.select import MemberScore, choose, cv_splits, pls_path_predictions

SG1 = {"savgol_window": 11, "savgol_polyorder": 2, "savgol_deriv": 1}


@pytest.fixture(scope="module")
def ssp_slice():
    data = load_limesoda("SSP.460", "SOC_target")
    frame = data.frame.iloc[:150]
    return frame[data.bands].astype("float64"), frame["SOC_target"].to_numpy()


@pytest.mark.parametrize("scale", [False, True])
def test_components_path_predicts_as_scikit_learns_pls_with_each_number_of_components(ssp_slice, scale):
    spectra, target = ssp_slice
    x = spectra.to_numpy()
    path = pls_path_predictions(x[:100], target[:100], x[100:], 8, scale)
    assert path.shape == (50, 8)
    for k in range(1, 9):
        direct = PLSRegression(n_components=k, scale=scale).fit(x[:100], target[:100]).predict(x[100:]).ravel()
        np.testing.assert_allclose(path[:, k - 1], direct, rtol=0, atol=1e-8)


def _score(name: str, folds: list[float]) -> MemberScore:
    return MemberScore(name, {}, float(np.mean(folds)), float(np.std(folds)), tuple(folds))


def test_lowest_cv_rmse_wins_and_a_tie_goes_to_the_member_declared_first():
    scores = [_score("plain", [0.5, 0.5]), _score("snv", [0.4, 0.4]), _score("sg1", [0.3, 0.5])]
    assert choose(scores, tolerance_se=0).name == "snv"
    assert choose(scores[:1], tolerance_se=0).name == "plain"


def test_one_se_rule_keeps_an_earlier_member_unless_the_best_is_clearly_better():
    plain = [0.50, 0.60, 0.40, 0.55, 0.45]
    noisy = _score("snv", [0.35, 0.70, 0.25, 0.65, 0.35])  # 0.04 lower on average, but the gaps scatter
    steady = _score("abs", [p - 0.04 for p in plain])  # 0.04 lower in every fold
    assert choose([_score("plain", plain), noisy], tolerance_se=0).name == "snv"
    assert choose([_score("plain", plain), noisy], tolerance_se=1, folds=5).name == "plain"
    assert choose([_score("plain", plain), steady], tolerance_se=1, folds=5).name == "abs"


def test_repeated_folds_start_with_the_single_split_and_differ_after():
    once, thrice = cv_splits(40, 5, 7), cv_splits(40, 5, 7, repeats=3)
    assert len(thrice) == 15
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(once, thrice[:5], strict=True))
    assert not np.array_equal(thrice[0][1], thrice[5][1])


def test_the_member_with_the_lowest_inner_cv_rmse_is_refit_on_every_row(ssp_slice):
    spectra, target = ssp_slice
    params = TrainParams(pls={"max_components": 6, "cv_folds": 5}, select_tolerance_se=0,
                         family={"plain": {}, "sg1": SG1, "abs_snv": {"absorbance": True, "snv": True}})
    fitted = fit_model(spectra, target, params)
    assert [s.name for s in fitted.scores] == ["plain", "sg1", "abs_snv"]
    best = min(fitted.scores, key=lambda s: s.cv_rmse)
    assert (fitted.member, fitted.best_params, fitted.cv_rmse) == (best.name, best.best_params, best.cv_rmse)
    steps = {"plain": [], "sg1": ["savgol"], "abs_snv": ["log10", "absorbance", "snv"]}[fitted.member]
    assert [name for name, _ in fitted.pipeline.steps] == [*steps, "model"]
    assert fitted.pipeline.steps[-1][1].n_components == fitted.best_params["n_components"]
    assert len({s.cv_rmse for s in fitted.scores}) == 3  # the members really differ on these rows


def test_too_few_rows_to_choose_fall_back_to_the_first_member(ssp_slice):
    spectra, target = ssp_slice
    params = TrainParams(pls={"max_components": 6, "cv_folds": 5}, select_min_rows=151,
                         family={"plain": {}, "snv": {"snv": True}})
    fitted = fit_model(spectra, target, params)
    assert fitted.member == "plain" and [s.name for s in fitted.scores] == ["plain"]
    both = fit_model(spectra, target, params.model_copy(update={"select_min_rows": 150}))
    assert [s.name for s in both.scores] == ["plain", "snv"]


def test_a_one_member_family_is_that_member_with_its_components_chosen(ssp_slice):
    spectra, target = ssp_slice
    fitted = fit_model(spectra, target, TrainParams(pls={"max_components": 6, "cv_folds": 5}))
    assert fitted.member == "plain" and [name for name, _ in fitted.pipeline.steps] == ["model"]
    assert 1 <= fitted.best_params["n_components"] <= 6


def _train(ws, data_dir, model_dir) -> ModelMetadata:
    assert main(["train", "--params", str(ws.params), "--data-dir", str(data_dir), "--model-dir", str(model_dir)]) == 0
    return ModelMetadata.load(model_dir / "soilci.json")


def _choice(meta: ModelMetadata) -> str:
    """What must not change between runs: the selection and every metric, as the bytes soilci.json holds."""
    return json.dumps({"selection": meta.selection.model_dump(mode="json"), "best": meta.best_params,
                       "metrics": meta.metrics}, sort_keys=True)


def test_two_train_runs_choose_the_same_pipeline_with_byte_identical_metrics(workspace, tmp_path):
    first = ModelMetadata.load(workspace.model_dir / "soilci.json")
    second = _train(workspace, workspace.data, tmp_path / "again")
    assert first.selection is not None and first.selection.chosen in {m.name for m in first.selection.members}
    family = TrainParams.model_validate(yaml.safe_load(workspace.params.read_text())["train"]).family
    assert [m.name for m in first.selection.members] == list(family)
    assert _choice(first) == _choice(second)
    assert first.run_id != second.run_id  # two real runs, not one read twice


def test_benchmark_rows_and_targets_never_change_the_choice(workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(workspace.data, data)
    benchmark = pd.read_parquet(data / "benchmark.parquet")
    rng = np.random.default_rng(7)
    shuffled = benchmark.iloc[rng.permutation(len(benchmark))].reset_index(drop=True)
    shuffled["SOC_target"] = rng.permutation(shuffled["SOC_target"].to_numpy()) * 3.0 + 1.0
    shuffled.to_parquet(data / "benchmark.parquet", index=False)
    meta = _train(workspace, data, tmp_path / "model")
    assert _choice(meta) == _choice(ModelMetadata.load(workspace.model_dir / "soilci.json"))


def test_the_run_logs_the_family_the_choice_and_the_inner_cv_scores(workspace):
    meta = ModelMetadata.load(workspace.model_dir / "soilci.json")
    client = workspace.client()
    run = client.get_run(meta.run_id)
    assert run.data.params["best.member"] == meta.selection.chosen
    for member in meta.selection.members:
        assert run.data.metrics[f"family.{member.name}.cv_rmse"] == pytest.approx(member.cv_rmse)
        assert f"train.family.{member.name}.snv" in run.data.params
    table = json.loads(Path(client.download_artifacts(meta.run_id, "selection.json")).read_text())
    assert table["columns"][0] == "member"
    assert [row[0] for row in table["data"]] == [m.name for m in meta.selection.members]
    chosen = next(m for m in meta.selection.members if m.name == meta.selection.chosen)
    assert meta.metrics["cv_rmse"] == pytest.approx(chosen.cv_rmse) and meta.best_params == chosen.best_params
    assert chosen.cv_rmse >= min(m.cv_rmse for m in meta.selection.members)
