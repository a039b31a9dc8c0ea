"""Image references and the tag publish-image gives an image."""

from __future__ import annotations

import pytest

from soilci.delivery.refs import ImageRef, image_tag
from soilci.errors import ConfigError

DIGEST = "sha256:" + "c" * 64


def test_image_tag_names_the_git_revision_and_the_model_version():
    assert image_tag("0123456789abcdef0123456789abcdef01234567", "7") == "0123456789ab-v7"
    assert image_tag("0123456789abcdef0123456789abcdef01234567-dirty", "12") == "0123456789ab-dirty-v12"


def test_image_tag_refuses_a_revision_that_is_not_a_commit_id():
    with pytest.raises(ConfigError, match="not a hex commit id; pass --git-revision"):
        image_tag("main", "7")


def test_image_references_split_like_kustomize_edit_set_image():
    ref = ImageRef.parse(f"127.0.0.1:5000/team/soil-model-api:0123456789ab-v7@{DIGEST}")
    assert (ref.name, ref.tag, ref.digest) == (
        "127.0.0.1:5000/team/soil-model-api",
        "0123456789ab-v7",
        DIGEST,
    )
    assert ImageRef.parse("127.0.0.1:5000/soil-model-api").tag is None  # the port is not a tag
    assert str(ref) == f"127.0.0.1:5000/team/soil-model-api:0123456789ab-v7@{DIGEST}"


def test_image_references_refuse_a_digest_that_is_not_sha256():
    with pytest.raises(ConfigError, match="is not sha256:<64 hex digits>"):
        ImageRef.parse("127.0.0.1:5000/soil-model-api@sha256:abc")
