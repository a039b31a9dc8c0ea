"""soilci bump / status / rollback against a real bare git repo standing in for the manifests repo."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from soilci.cli import main
from soilci.delivery.bump import bump, bump_request
from soilci.delivery.gitops import commit_and_push, other
from soilci.delivery.promote import promote, rollback
from soilci.errors import GateRefused

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = "deploy/kustomize/overlays/staging"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGE_A = f"127.0.0.1:5000/soil-model-api:0123456789ab-v7@{DIGEST_A}"
IMAGE_B = f"127.0.0.1:5000/soil-model-api:ba9876543210-v8@{DIGEST_B}"
NO_MLFLOW = "http://127.0.0.1:9"  # refusals happen before the registry is asked


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def seed_manifests_repo(tmp_path: Path) -> str:
    """A bare repo on branch main holding this project's deploy/kustomize, as a manifests repo would."""
    bare = tmp_path / "manifests.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "seed"
    shutil.copytree(ROOT / "deploy" / "kustomize", work / "deploy" / "kustomize")
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", "-A", cwd=work)
    git(
        "-c", "user.name=seed", "-c", "user.email=seed@localhost", "commit", "--quiet", "-m", "seed", cwd=work
    )
    git("push", "--quiet", str(bare), "main", cwd=work)
    return str(bare)


def log(repo: str) -> list[str]:
    return git("--git-dir", repo, "log", "--format=%s", "main").splitlines()


def show(repo: str, rel: str) -> str:
    return git("--git-dir", repo, "show", f"main:{OVERLAY}/{rel}")


def switch_live_by_hand(repo: str) -> None:
    """A commit that swaps the colours, as an SRE's promote would, without the checks."""

    def change(checkout):
        ov = checkout.overlay
        ov.set_live(other(ov.live_colour()))
        return "staging: switch colours", None

    commit_and_push(repo, change)


@pytest.fixture
def repo(tmp_path) -> str:
    return seed_manifests_repo(tmp_path)


def test_bump_pins_the_idle_colour_and_names_version_revision_and_digest_in_the_commit(repo):
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A]) == 0
    subject = log(repo)[0]
    assert subject.startswith("staging: green runs soil-carbon v7 (git 0123456789ab, sha256:aaaa")
    body = git("--git-dir", repo, "log", "-1", "--format=%b", "main")
    assert DIGEST_A in body and "0123456789ab" in body and "version 7" in body
    kust = show(repo, "kustomization.yaml")
    assert (
        "newName: 127.0.0.1:5000/soil-model-api\n    newTag: 0123456789ab-v7\n    digest: " + DIGEST_A in kust
    )
    assert 'soilci.io/model-version: "7"' in show(repo, "green/release.yaml")
    assert 'model-version: "none"' in show(repo, "blue/release.yaml")  # the live colour is untouched


def test_bump_twice_with_the_same_image_makes_no_second_commit(repo):
    req = bump_request(IMAGE_A)
    first, second = bump(repo, req), bump(repo, req)
    assert first.commit is not None and second.commit is None
    assert len(log(repo)) == 2


def test_bump_does_not_repin_an_image_the_live_colour_already_runs(repo):
    bump(repo, bump_request(IMAGE_A))
    switch_live_by_hand(repo)  # green (running IMAGE_A) is live now
    again = bump(repo, bump_request(IMAGE_A))
    assert again.commit is None and again.detail == "green"
    assert 'model-version: "none"' in show(repo, "blue/release.yaml")


def test_two_concurrent_bumps_both_land(repo):
    # Both runs clone the same tip and commit; the barrier holds them until both are about to push,
    # so one push is rejected and that run must fetch, replay its change and push again.
    barrier = threading.Barrier(2, timeout=30)
    results, errors = {}, []

    def run(name: str, image: str) -> None:
        try:
            results[name] = bump(
                repo,
                bump_request(image),
                before_push=lambda attempt: barrier.wait() if attempt == 1 else None,
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("a", IMAGE_A)),
        threading.Thread(target=run, args=("b", IMAGE_B)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(r.attempts for r in results.values()) == [1, 2]
    subjects = log(repo)
    assert len(subjects) == 3
    assert any("v7" in s for s in subjects) and any("v8" in s for s in subjects)
    later = max(results.values(), key=lambda r: r.attempts)
    assert git("--git-dir", repo, "rev-parse", "main") == later.commit
    winner_digest = DIGEST_A if later is results["a"] else DIGEST_B
    assert winner_digest in show(repo, "kustomization.yaml")


def test_bump_refuses_an_image_not_pinned_by_digest(repo, capsys):
    assert main(["bump", "--manifests-repo", repo, "--image", "127.0.0.1:5000/soil-model-api:abc-v7"]) == 2
    assert "pin it by digest" in capsys.readouterr().err
    assert len(log(repo)) == 1


def test_bump_reads_publish_images_record(repo, tmp_path):
    record = tmp_path / "image.json"
    record.write_text(
        json.dumps(
            {
                "image": IMAGE_B,
                "model_name": "soil-carbon",
                "model_version": "8",
                "git_revision": "ba9876543210" + "0" * 28,
            }
        )
    )
    assert main(["bump", "--manifests-repo", repo, "--from", str(record)]) == 0
    assert f'git-revision: "ba9876543210{"0" * 28}"' in show(repo, "green/release.yaml")


def test_status_reports_live_colour_each_colours_release_and_the_objects_argo_cd_syncs(repo, capsys):
    bump(repo, bump_request(IMAGE_A))
    assert main(["status", "--manifests-repo", repo, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["live"], report["preview"]) == ("blue", "green")
    assert report["colours"]["green"]["image"] == IMAGE_A
    assert report["colours"]["green"]["model_version"] == "7"
    assert report["colours"]["blue"]["model_version"] == "none"
    assert {(o["kind"], o["name"]) for o in report["objects"]} == {
        ("ServiceAccount", "model-api-blue"),
        ("ServiceAccount", "model-api-green"),
        ("Service", "model-api"),
        ("Service", "model-api-preview"),
        ("Deployment", "model-api-blue"),
        ("Deployment", "model-api-green"),
        ("PodDisruptionBudget", "model-api-blue"),
        ("PodDisruptionBudget", "model-api-green"),
    }
    assert main(["status", "--manifests-repo", repo]) == 0
    table = capsys.readouterr().out
    assert "green   preview  soil-carbon v7" in table and "blue    live     (none)" in table


def test_promote_refuses_a_preview_colour_without_a_release(repo, capsys):
    rc = main(
        [
            "promote",
            "--manifests-repo",
            repo,
            "--preview-url",
            "http://127.0.0.1:9",
            "--tracking-uri",
            NO_MLFLOW,
        ]
    )
    assert rc == 1
    assert "green has no release in the manifests" in capsys.readouterr().err
    assert len(log(repo)) == 1


def test_promote_refuses_when_the_preview_pins_another_version_than_expected(repo):
    bump(repo, bump_request(IMAGE_A))
    with pytest.raises(GateRefused, match="pins soil-carbon v7, not the expected v8"):
        promote(repo, preview_url="http://127.0.0.1:9", tracking_uri=NO_MLFLOW, expect_version="8")


def test_promote_refuses_when_the_preview_colour_does_not_answer(repo):
    bump(repo, bump_request(IMAGE_A))
    with pytest.raises(GateRefused, match=r"green is not ready: GET http://127.0.0.1:9/readyz failed"):
        promote(repo, preview_url="http://127.0.0.1:9", tracking_uri=NO_MLFLOW)
    assert len(log(repo)) == 2


def test_rollback_refuses_when_the_previous_colour_was_bumped_since(repo):
    bump(repo, bump_request(IMAGE_A))
    switch_live_by_hand(repo)  # green live, blue (unreleased) preview
    bump(repo, bump_request(IMAGE_B))  # blue now runs v8, not what it ran when it was live
    with pytest.raises(GateRefused, match="blue was bumped since it was live"):
        rollback(repo, preview_url="http://127.0.0.1:9", tracking_uri=NO_MLFLOW)


def test_rollback_refuses_when_live_yaml_never_changed(repo):
    with pytest.raises(GateRefused, match="nothing to roll back"):
        rollback(repo, preview_url="http://127.0.0.1:9", tracking_uri=NO_MLFLOW)


def test_errors_never_print_a_token_from_the_repo_url(capsys):
    rc = main(["status", "--manifests-repo", "http://bot:s3cr3t-token@127.0.0.1:9/manifests.git"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "cannot clone manifests repo http://127.0.0.1:9/manifests.git" in err
    assert "s3cr3t" not in err
