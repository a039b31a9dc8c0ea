"""The app in process (no server): limits and the loader's refusals, each naming what is wrong."""

from __future__ import annotations

import asyncio
import json
import re
import shutil

import httpx
import pytest
from soil_model_api.app import create_app
from soil_model_api.config import Settings
from soil_model_api.errors import ModelLoadError
from soil_model_api.model_loader import load_from_dir


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_from_dir(model_dir)


def test_body_above_the_byte_limit_is_413_before_parsing(loaded, benchmark):
    app = create_app(Settings(model_dir=loaded.info.source, max_body_bytes=4096), model=loaded)
    body = json.dumps({"spectra": benchmark.spectra[:1].tolist()})

    async def post():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})

    resp = asyncio.run(post())

    assert len(body) > 4096
    assert resp.status_code == 413
    assert "MODEL_API_MAX_BODY_BYTES" in resp.json()["detail"][0]["msg"]


def test_a_model_without_signature_is_refused_naming_the_file(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    mlmodel = (copy / "MLmodel").read_text()
    (copy / "MLmodel").write_text(mlmodel.split("signature:")[0])

    with pytest.raises(ModelLoadError, match="MLmodel: the model has no input signature"):
        load_from_dir(copy)


def test_soilci_json_bands_must_match_the_signature(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((copy / "soilci.json").read_text())
    meta["bands"] = meta["bands"][:-1] if meta.get("bands") else ["wl_1"]
    (copy / "soilci.json").write_text(json.dumps(meta))

    with pytest.raises(ModelLoadError, match="soilci.json: 'bands' differ"):
        load_from_dir(copy)


def test_skops_models_are_refused_with_how_to_save_instead(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    text = re.sub(r"serialization_format: \w+", "serialization_format: skops", (copy / "MLmodel").read_text())
    (copy / "MLmodel").write_text(text)

    with pytest.raises(ModelLoadError, match="serialization_format='cloudpickle'"):
        load_from_dir(copy)
