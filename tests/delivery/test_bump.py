"""soilci bump against a real bare git repo standing in for the manifests repo."""

from __future__ import annotations

import pytest

from soil_contracts.records import ImageRecord
from soilci.cli import main
from soilci.delivery.bump import bump
from tests.delivery.support import (
    DIGEST_A,
    DIGEST_B,
    IMAGE_A,
    IMAGE_B,
    git,
    log,
    request,
    show,
    switch_live_by_hand,
)
from tests.support import REPO_ROOT


def test_bump_pins_the_idle_slot_and_names_version_revision_and_digest_in_the_commit(repo):
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A]) == 0
    subject = log(repo)[0]
    assert subject.startswith("staging: green runs soil-soc v7 (git 0123456789ab, sha256:aaaa")
    body = git("--git-dir", repo, "log", "-1", "--format=%b", "main")
    assert DIGEST_A in body and "0123456789ab" in body and "version 7" in body
    assert "Idle slot green" in body
    kust = show(repo, "kustomization.yaml")
    assert (
        "newName: 127.0.0.1:5000/soil-model-api\n    newTag: 0123456789ab-v7\n    digest: " + DIGEST_A in kust
    )
    assert 'soilci.io/model-version: "7"' in show(repo, "green/release.yaml")
    assert 'model-version: "none"' in show(repo, "blue/release.yaml")  # the live slot is untouched


def test_bump_takes_the_model_name_from_params_unless_given(repo, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text().replace("model_name: null", "model_name: soil-nitrogen"))
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A, "--params", str(params)]) == 0
    assert log(repo)[0].startswith("staging: green runs soil-nitrogen v7")
    args = ["--image", IMAGE_B, "--params", str(params), "--model-name", "soil-ph"]
    assert main(["bump", "--manifests-repo", repo, *args]) == 0
    assert log(repo)[0].startswith("staging: green runs soil-ph v8")


def test_bump_twice_with_the_same_image_makes_no_second_commit(repo):
    first, second = bump(repo, request(IMAGE_A)), bump(repo, request(IMAGE_A))
    assert first.commit is not None and second.commit is None
    assert len(log(repo)) == 2


def test_bump_does_not_repin_an_image_the_live_slot_already_runs(repo):
    bump(repo, request(IMAGE_A))
    switch_live_by_hand(repo)  # green (running IMAGE_A) is live now
    again = bump(repo, request(IMAGE_A))
    assert again.commit is None and again.detail == "green"
    assert 'model-version: "none"' in show(repo, "blue/release.yaml")


def test_bump_refuses_an_image_not_pinned_by_digest(repo, capsys):
    assert main(["bump", "--manifests-repo", repo, "--image", "127.0.0.1:5000/soil-model-api:abc-v7"]) == 2
    assert "pin it by digest" in capsys.readouterr().err
    assert len(log(repo)) == 1


def test_bump_needs_model_version_when_the_tag_does_not_carry_it(tmp_path, capsys):
    image = f"127.0.0.1:5000/soil-model-api:latest@{DIGEST_A}"
    assert main(["bump", "--manifests-repo", str(tmp_path / "none.git"), "--image", image]) == 2
    assert "pass --model-version and --git-revision" in capsys.readouterr().err


def test_bump_reads_publish_images_record(repo, tmp_path):
    record = ImageRecord(
        image=IMAGE_B,
        repository="127.0.0.1:5000/soil-model-api",
        tag="ba9876543210-v8",
        digest=DIGEST_B,
        image_id="sha256:" + "e" * 64,
        model_name="soil-soc",
        model_version="8",
        git_revision="ba9876543210" + "0" * 28,
        service_image="soil-model-api:ba9876543210",
    ).save(tmp_path / "image.json")
    assert main(["bump", "--manifests-repo", repo, "--from", str(record)]) == 0
    assert f'git-revision: "ba9876543210{"0" * 28}"' in show(repo, "green/release.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"image": "x"}', "image.json: publish-image record: repository: Field required"),
        ("not json", "image.json: publish-image record is not valid UTF-8 JSON"),
    ],
)
def test_bump_refuses_a_record_that_is_not_publish_images(repo, tmp_path, capsys, text, message):
    (tmp_path / "image.json").write_text(text)
    assert main(["bump", "--manifests-repo", repo, "--from", str(tmp_path / "image.json")]) == 2
    assert message in capsys.readouterr().err
    assert len(log(repo)) == 1


def _record(**change: str) -> ImageRecord:
    fields = {
        "image": IMAGE_B, "repository": "127.0.0.1:5000/soil-model-api", "tag": "ba9876543210-v8", "digest": DIGEST_B,
        "image_id": "sha256:" + "e" * 64, "model_name": "soil-soc", "model_version": "8",
        "git_revision": "ba9876543210", "service_image": "soil-model-api:ba9876543210",
    }
    return ImageRecord.model_construct(**{**fields, **change})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("git_revision", '391a3e000a29"\nspec:\n  template:\n    spec:\n      hostNetwork: true\n#'),
        ("model_name", 'soil-soc"\n    x: "y'),
        ("model_version", "8\n"),
        ("image", IMAGE_B + "\nspec: {}"),
    ],
)
def test_bump_refuses_a_record_whose_fields_would_inject_into_the_manifests(repo, tmp_path, capsys, field, value):
    path = tmp_path / "image.json"
    path.write_text(_record(**{field: value}).to_json())
    assert main(["bump", "--manifests-repo", repo, "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{field} {value!r} does not match" in err or f"image {value!r} is not" in err
    assert len(log(repo)) == 1 and "hostNetwork" not in show(repo, "green/release.yaml")


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--git-revision", '0123456789ab"\nhostNetwork: true'), ("--model-name", "soil soc"), ("--model-version", "٣")],
)
def test_bump_refuses_injected_command_line_values(repo, capsys, flag, value):
    image = f"127.0.0.1:5000/soil-model-api:latest@{DIGEST_A}"
    args = {"--model-version": "7", "--git-revision": "0123456789ab", "--model-name": "soil-soc", flag: value}
    argv = ["bump", "--manifests-repo", repo, "--image", image, *(x for kv in args.items() for x in kv)]
    assert main(argv) == 2
    assert f"{flag} {value!r} does not match" in capsys.readouterr().err
    assert len(log(repo)) == 1


def test_release_annotations_refuse_values_outside_their_pattern():
    from pydantic import ValidationError

    from soilci.delivery.release import ReleaseAnnotations

    with pytest.raises(ValidationError, match="git_revision"):
        ReleaseAnnotations(model_name="soil-soc", model_version="7", git_revision='x"\nhostNetwork: true')


def test_bump_never_moves_a_slot_to_an_older_model_version(repo, capsys):
    # v8's run bumps first; a re-run of the older v7 run bumps later.
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_B]) == 0
    capsys.readouterr()
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A]) == 1
    assert "green already pins soil-soc v8, newer than v7; not bumping an older version" in capsys.readouterr().err
    assert len(log(repo)) == 2 and 'model-version: "8"' in show(repo, "green/release.yaml")
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A, "--allow-downgrade"]) == 0
    assert 'model-version: "7"' in show(repo, "green/release.yaml")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--model-version", "8"], ["--model-version 8", "0123456789ab-v7", "version 7"]),
        (["--git-revision", "fedcba987654" + "0" * 28], ["--git-revision fedcba987654", "0123456789ab-v7"]),
    ],
)
def test_bump_refuses_a_version_or_revision_that_disagrees_with_the_image_tag(repo, capsys, flags, named):
    # The new-user trial's input: an image tagged v7 bumped with --model-version 8 was pinned as v8.
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A, *flags]) == 2
    err = capsys.readouterr().err
    assert all(text in err for text in named), err
    assert len(log(repo)) == 1  # nothing committed


def test_bump_accepts_a_version_and_full_revision_that_match_the_tag(repo):
    flags = ["--model-version", "7", "--git-revision", "0123456789ab" + "0" * 28]
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A, *flags]) == 0
    assert log(repo)[0].startswith("staging: green runs soil-soc v7")
