"""conformal: cross-conformal half-widths from MAPIE, on a real slice of the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cross_decomposition import PLSRegression

from soil_trainer.conformal import conformal_half_widths


def test_half_widths_are_the_out_of_fold_residual_quantiles(prepared_data):
    rows = pd.read_parquet(prepared_data / "training.parquet").dropna(subset=["SOC_target"])
    bands = [c for c in rows.columns if c.startswith("wl_")][::10]
    features = np.log10(1.0 / rows[bands].to_numpy(float))
    target = rows["SOC_target"].to_numpy(float)

    widths = conformal_half_widths(PLSRegression(n_components=6), features, target, folds=5, seed=1,
                                   coverages=(0.8, 0.9))

    residuals = np.empty_like(target)
    from sklearn.model_selection import KFold

    for fit, held in KFold(5, shuffle=True, random_state=1).split(features):
        model = PLSRegression(n_components=6).fit(features[fit], target[fit])
        residuals[held] = np.abs(target[held] - model.predict(features[held]).ravel())
    for width in widths:  # MAPIE's finite-sample quantile: ceil((n+1) coverage)-th smallest residual
        rank = int(np.ceil((len(target) + 1) * width.coverage))
        assert np.isclose(width.half_width, np.sort(residuals)[rank - 1], rtol=1e-6)
    assert widths[1].half_width > widths[0].half_width
