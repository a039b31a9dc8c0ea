"""The staging overlay: switching the live slot and pinning a slot's image touch only what they should."""

from __future__ import annotations

import shutil

import pytest

from soilci.delivery.overlay import (
    KUSTOMIZATION,
    LIVE_FILE,
    LIVE_SERVICE,
    PREVIEW_SERVICE,
    StagingOverlay,
    other,
)
from soilci.delivery.refs import ImageRef
from soilci.delivery.release import ReleaseAnnotations
from soilci.errors import ConfigError
from tests.delivery.support import KUSTOMIZE, OVERLAY, assert_blue_green_invariants, container, find, rendered

STAGING = KUSTOMIZE / "overlays" / "staging"
CONFLICT = """\
<<<<<<< HEAD
    newTag: unreleased
=======
    newTag: 0123456789ab-v7
>>>>>>> 0123456 (staging: green runs soil-soc v7)
"""


@pytest.fixture
def overlay_copy(tmp_path) -> StagingOverlay:
    shutil.copytree(KUSTOMIZE, tmp_path / "deploy" / "kustomize")
    return StagingOverlay(tmp_path / OVERLAY)


def changed(objects: list[dict], before: list[dict]) -> list[tuple[str, str]]:
    """(kind, name) of the objects that differ between two renders of the same overlay."""
    return sorted((o["kind"], o["metadata"]["name"]) for o, p in zip(objects, before, strict=True) if o != p)


def test_switching_the_live_slot_keeps_the_invariants_and_touches_only_the_selectors(overlay_copy):
    before = overlay_copy.live_slot()
    overlay_copy.set_live(other(before))
    switched = overlay_copy.render()
    assert assert_blue_green_invariants(switched) == other(before)
    assert changed(switched, rendered(STAGING)) == [("Service", LIVE_SERVICE), ("Service", PREVIEW_SERVICE)]


def test_setting_one_slots_image_leaves_the_other_slot_untouched(overlay_copy):
    ref = ImageRef.parse("127.0.0.1:5000/soil-model-api:0123456789ab-v7@sha256:" + "a" * 64)
    notes = ReleaseAnnotations(model_name="soil-soc", model_version="7", git_revision="0123456789ab")
    overlay_copy.set_release("green", ref, notes)
    bumped = overlay_copy.render()
    assert changed(bumped, rendered(STAGING)) == [("Deployment", "model-api-green")]
    assert container(bumped, "model-api-green")["image"] == str(ref)
    green = find(bumped, "Deployment", "model-api-green")
    assert green["metadata"]["annotations"]["soilci.io/model-version"] == "7"
    assert overlay_copy.release("green").model_version == "7"
    assert overlay_copy.release("blue") == StagingOverlay(STAGING).release("blue")


def test_a_kustomization_with_conflict_markers_is_refused_naming_the_file_and_line(overlay_copy):
    path = overlay_copy.root / KUSTOMIZATION
    path.write_text(path.read_text().replace("    newTag: unreleased\n", CONFLICT, 1))
    with pytest.raises(
        ConfigError, match=r"kustomization.yaml: not valid YAML at line \d+ .*conflict markers"
    ):
        overlay_copy.release("blue")


def test_a_live_file_selecting_one_slot_twice_is_refused(overlay_copy):
    path = overlay_copy.root / LIVE_FILE
    path.write_text(path.read_text().replace("slot: green", "slot: blue"))
    with pytest.raises(ConfigError, match="model-api and model-api-preview both select blue"):
        overlay_copy.live_slot()


def test_a_kustomization_that_is_not_a_mapping_is_refused(overlay_copy):
    (overlay_copy.root / KUSTOMIZATION).write_text("- resources\n")
    with pytest.raises(ConfigError, match="kustomization.yaml: expected one YAML mapping"):
        overlay_copy.release("green")
