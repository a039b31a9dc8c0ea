"""The soil-drift image runs the gate as its entry point on read-only data, with a read-only root."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.docker


def test_gate_container_passes_the_default_split_and_fails_a_shifted_batch(
    docker_client, built_images, prepared_data, repo_root, tmp_path: Path
):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    for name in ("reference", "incoming"):
        shutil.copy(prepared_data / f"{name}.parquet", data / f"{name}.parquet")
    incoming = pd.read_parquet(data / "incoming.parquet")
    bands = [c for c in incoming.columns if c.startswith("wl_")]
    incoming[bands] = incoming[bands] + 0.01 * incoming[bands].to_numpy().mean()  # 1% baseline offset
    incoming.to_parquet(data / "offset.parquet", index=False)
    shutil.copy(repo_root / "params.yaml", data / "params.yaml")
    for path in [data, *data.iterdir()]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(out, 0o777)  # the image's user (10001) writes the verdict here

    def gate(candidate: str, stem: str) -> int:
        container = docker_client.containers.run(
            built_images["drift"],
            command=["check", "/data/reference.parquet", f"/data/{candidate}", "--params", "/data/params.yaml",
                     "--out", f"/out/{stem}.json", "--plot", f"/out/{stem}.png"],
            volumes={str(data): {"bind": "/data", "mode": "ro"}, str(out): {"bind": "/out", "mode": "rw"}},
            read_only=True, tmpfs={"/tmp": ""}, detach=True,
        )
        try:
            return container.wait(timeout=120)["StatusCode"]
        finally:
            container.remove(force=True)

    assert gate("incoming.parquet", "honest") == 0
    honest = json.loads((out / "honest.json").read_text())
    assert honest["status"] == "pass" and honest["candidate"]["rows"] == 46
    assert (out / "honest.png").stat().st_uid == 10001

    assert gate("offset.parquet", "offset") == 1
    offset = json.loads((out / "offset.json").read_text())
    assert offset["status"] == "fail"
    assert "baseline offset" in [t["name"] for t in offset["top_drifted"]]


def test_gate_image_carries_neither_scikit_learn_nor_test_suites(docker_client, built_images):
    """soil-drift imports no scikit-learn, and no package's own tests run in production."""
    probe = ("import importlib.util, pathlib, sys; "
             "print(importlib.util.find_spec('sklearn') is None, "
             "sum(1 for p in pathlib.Path(sys.prefix).rglob('tests') if p.is_dir()))")
    out = docker_client.containers.run(built_images["drift"], entrypoint="python", command=["-c", probe], remove=True)
    assert out.split() == [b"True", b"0"]
