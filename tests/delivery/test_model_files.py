"""The model publish-image bakes in: its soilci.json stamped with the registered version."""

from __future__ import annotations

import pytest

from soil_contracts.model import ModelMetadata
from soilci.delivery.model_files import read_metadata, stage_model, stamp
from soilci.errors import ConfigError
from tests.delivery.support import TRAINED


def test_staged_model_carries_the_registered_version_and_is_world_readable(model_dir, tmp_path):
    model_dir.joinpath(ModelMetadata.FILE).chmod(0o600)
    meta = stamp(read_metadata(model_dir), model_name="soil-soc", model_version="7", where="test")
    stage_model(model_dir, tmp_path / "ctx", meta)
    staged = ModelMetadata.load(tmp_path / "ctx" / ModelMetadata.FILE)
    assert (staged.name, staged.version, staged.git_revision) == ("soil-soc", "7", "abc")
    assert staged.model_copy(update={"version": None}) == TRAINED  # nothing else changes
    assert (tmp_path / "ctx" / ModelMetadata.FILE).stat().st_mode & 0o777 == 0o644
    assert (model_dir / ModelMetadata.FILE).stat().st_mode & 0o777 == 0o600  # the source is not touched


def test_a_model_dir_without_metadata_is_refused(model_dir):
    (model_dir / ModelMetadata.FILE).unlink()
    with pytest.raises(ConfigError, match="no soilci.json; soil-trainer train writes it"):
        read_metadata(model_dir)


def test_stamping_keeps_a_matching_version_and_refuses_another():
    seven = TRAINED.model_copy(update={"version": "7"})
    assert stamp(seven, model_name="soil-soc", model_version="7", where="m").version == "7"
    with pytest.raises(ConfigError, match="m: records version 7, but --model-version is 8"):
        stamp(seven, model_name="soil-soc", model_version="8", where="m")
