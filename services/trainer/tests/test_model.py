"""The model pipeline: preprocessing maths, determinism, and a pickle that needs no trainer code."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from soil_trainer.config import PreprocessingParams, TrainParams
from soil_trainer.dataset import load_limesoda
from soil_trainer.errors import DataError, ParamsError
from soil_trainer.model import build_preprocessing, fit_model, predict, resampling_matrix

# Small but real: 3 components and 3-fold CV keep each fit well under a second.
FAST = TrainParams(pls={"max_components": 3, "cv_folds": 3}, family={"plain": {}, "abs": {"absorbance": True}})


@pytest.fixture(scope="module")
def ssp_slice():
    data = load_limesoda("SSP.460", "SOC_target")
    frame = data.frame.iloc[:120]
    return frame[data.bands].astype("float64"), frame["SOC_target"].to_numpy(), data.bands


@pytest.mark.parametrize("descending", [False, True])
def test_resampling_reproduces_a_linear_spectrum_on_the_grid(descending):
    positions = np.array([350.0, 352, 353, 355, 357, 359, 360, 362, 371, 380])
    if descending:  # MIR datasets list wavenumbers from high to low
        positions = positions[::-1]
    weights, grid = resampling_matrix(positions, 5.0)
    spectrum = 0.3 * positions - 7.0
    np.testing.assert_allclose(grid, [350, 355, 360, 365, 370, 375, 380])
    np.testing.assert_allclose(spectrum @ weights, 0.3 * grid - 7.0)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0)


def test_preprocessing_follows_params_order_and_skips_disabled_steps():
    bands = [f"wl_{350 + 2 * i}" for i in range(60)]
    member = PreprocessingParams(absorbance=True, snv=True, savgol_window=7, resample_step=4)
    steps = build_preprocessing(bands, member)
    assert [name for name, _ in steps] == ["log10", "absorbance", "resample", "snv", "savgol"]
    assert build_preprocessing(bands, PreprocessingParams()) == []  # every step is off unless set


def test_savgol_window_longer_than_the_grid_is_rejected_with_its_key():
    bands = [f"wl_{350 + 2 * i}" for i in range(60)]
    with pytest.raises(ParamsError, match="train.family.sg.savgol_window"):
        build_preprocessing(bands, PreprocessingParams(resample_step=20, savgol_window=9), "train.family.sg")


@pytest.mark.parametrize("step", [1e-300, 0.01])
def test_a_resampling_step_far_finer_than_the_bands_is_rejected_before_the_grid_is_built(step):
    """The kind of the drift gate's alpha 1e-300: a tiny value that would have the stage allocate without end."""
    bands = [f"wl_{350 + 2 * i}" for i in range(60)]
    with pytest.raises(ParamsError, match="train.family.sg.resample_step: .* adds no information"):
        build_preprocessing(bands, PreprocessingParams(resample_step=step), "train.family.sg")
    assert [n for n, _ in build_preprocessing(bands, PreprocessingParams(resample_step=1))] == ["resample"]


def test_same_data_and_params_give_the_same_model(ssp_slice):
    spectra, target, _ = ssp_slice
    first = fit_model(spectra, target, FAST)
    second = fit_model(spectra, target, FAST)
    assert first.best_params == second.best_params
    assert first.cv_rmse == second.cv_rmse
    assert pickle.dumps(first.pipeline) == pickle.dumps(second.pipeline)


def test_absorbance_of_non_positive_reflectance_is_a_data_error(ssp_slice):
    spectra, target, _ = ssp_slice
    broken = spectra.copy()
    broken.iloc[5, 10] = 0.0
    with pytest.raises(DataError, match="train.family.abs.absorbance needs positive reflectance"):
        fit_model(broken, target, FAST)


@pytest.mark.parametrize("model", ["ridge", "random_forest"])
def test_other_regressors_are_selectable(ssp_slice, model):
    spectra, target, _ = ssp_slice
    params = TrainParams(model=model, ridge={"cv_folds": 3}, random_forest={"n_estimators": 20, "cv_folds": 3})
    fitted = fit_model(spectra, target, params)
    assert type(fitted.pipeline.steps[-1][1]).__name__ == {"ridge": "Ridge", "random_forest": "RandomForestRegressor"}[model]
    assert np.isfinite(predict(fitted.pipeline, spectra.iloc[:5])).all()


def test_pickled_pipeline_predicts_without_soil_trainer_installed(ssp_slice, monkeypatch):
    spectra, target, _ = ssp_slice
    params = FAST.model_copy(update={"family": {"sg": PreprocessingParams(absorbance=True, resample_step=10,
                                                                          snv=True, savgol_window=5)}})
    fitted = fit_model(spectra, target, params)
    assert [name for name, _ in fitted.pipeline.steps] == ["log10", "absorbance", "resample", "snv", "savgol", "model"]
    blob = pickle.dumps(fitted.pipeline)
    expected = predict(fitted.pipeline, spectra.iloc[:7])
    # Any reference to the trainer package (or MLflow) now fails, as in an interpreter without them.
    for name in [m for m in sys.modules if m.split(".")[0] in {"soil_trainer", "mlflow"}]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "soil_trainer", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    model = pickle.loads(blob)
    np.testing.assert_array_equal(model.predict(spectra.iloc[:7]).reshape(-1), expected)


def test_a_ridge_grid_longer_than_100_alphas_is_rejected_with_its_key(tmp_path):
    from soil_trainer.config import load_section
    from soil_trainer.errors import ParamsError

    params = tmp_path / "params.yaml"
    grid = ", ".join(str(10.0 ** (k / 20)) for k in range(-60, 61))  # 121 alphas
    params.write_text(f"train:\n  model: ridge\n  ridge:\n    alphas: [{grid}]\n")
    with pytest.raises(ParamsError, match=r"train\.ridge\.alphas.*at most 100"):
        load_section(params, "train", TrainParams)
    params.write_text("train:\n  model: ridge\n  ridge:\n    alphas: [0.1, 1.0, 10.0]\n")
    assert load_section(params, "train", TrainParams).ridge.alphas == (0.1, 1.0, 10.0)
