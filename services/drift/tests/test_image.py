"""The soil-drift image carries neither scikit-learn nor any package's test suites.

Its gate in the image (the default split passes, a baseline offset fails and is named, on read-only data with a
read-only root) is checked by tests/test_image_contents.py, which runs the gate's verbs in it.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker


def test_gate_image_carries_neither_scikit_learn_nor_test_suites(docker_client, built_images):
    """soil-drift imports no scikit-learn, and no package's own tests run in production."""
    probe = ("import importlib.util, pathlib, sys; "
             "print(importlib.util.find_spec('sklearn') is None, "
             "sum(1 for p in pathlib.Path(sys.prefix).rglob('tests') if p.is_dir()))")
    out = docker_client.containers.run(built_images["drift"], entrypoint="python", command=["-c", probe], remove=True)
    assert out.split() == [b"True", b"0"]
