"""Release annotations: one typed model written into <slot>/release.yaml and read back from it."""

from __future__ import annotations

import pytest
import yaml

from soilci.delivery.release import ReleaseAnnotations
from soilci.errors import ConfigError

NOTES = ReleaseAnnotations(model_name="soil-soc", model_version="7", git_revision="0123456789ab")


def test_annotations_round_trip_through_their_dict():
    annotations = NOTES.to_annotations()
    assert annotations == {
        "soilci.io/model-name": "soil-soc",
        "soilci.io/model-version": "7",
        "soilci.io/git-revision": "0123456789ab",
    }
    assert ReleaseAnnotations.from_annotations(annotations, where="test") == NOTES


def test_release_file_is_a_deployment_patch_whose_annotations_stay_strings():
    text = NOTES.release_file("green", "model-api-green")
    assert text.startswith("# What the green slot runs; soilci bump rewrites this file")
    assert 'soilci.io/model-version: "7"' in text
    doc = yaml.safe_load(text)
    assert (doc["kind"], doc["metadata"]["name"]) == ("Deployment", "model-api")
    assert ReleaseAnnotations.from_annotations(doc["metadata"]["annotations"], where="test") == NOTES


def test_other_annotations_are_ignored_and_absent_ones_are_none():
    notes = ReleaseAnnotations.from_annotations(
        {"soilci.io/model-version": "none", "example.org/owner": "sre"}, where="test"
    )
    assert notes == ReleaseAnnotations(model_version="none")
    assert notes.to_annotations() == {"soilci.io/model-version": "none"}


def test_a_non_string_annotation_is_refused_by_name():
    with pytest.raises(ConfigError, match="release.yaml: annotation soilci.io/model-version: "):
        ReleaseAnnotations.from_annotations({"soilci.io/model-version": 7}, where="green/release.yaml")
