"""Commits to the manifests repo: racing pushes both land, and a token in its URL is never printed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from soilci.cli import main
from soilci.delivery.bump import bump
from tests.delivery.support import DIGEST_A, DIGEST_B, IMAGE_A, IMAGE_B, git, log, request, show


def test_two_concurrent_bumps_both_land(repo):
    # Both runs clone the same tip and commit; the barrier holds them until both are about to push,
    # so one push is rejected and that run must fetch, replay its change and push again.
    barrier = threading.Barrier(2, timeout=30)
    results, errors = {}, []

    def run(name: str, image: str) -> None:
        try:
            results[name] = bump(
                repo,
                request(image),
                before_push=lambda attempt: barrier.wait() if attempt == 1 else None,
                allow_downgrade=True,  # v8 may land first; this test is about the replay, not the order
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


def test_errors_never_print_a_token_from_the_repo_url(capsys):
    rc = main(["status", "--manifests-repo", "http://bot:s3cr3t-token@127.0.0.1:9/manifests.git"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "cannot clone manifests repo http://***@127.0.0.1:9/manifests.git" in err
    assert "s3cr3t" not in err and "bot" not in err


def test_a_detached_head_in_the_manifests_repo_is_refused_not_pushed_to_refs_heads_head(repo, capsys):
    git("--git-dir", repo, "update-ref", "--no-deref", "HEAD", git("--git-dir", repo, "rev-parse", "main"))
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A]) == 2
    assert "has a detached HEAD (no default branch); pass --branch" in capsys.readouterr().err
    assert len(log(repo)) == 1
    assert git("--git-dir", repo, "for-each-ref", "--format=%(refname)") == "refs/heads/main"


@pytest.mark.parametrize(
    ("branch", "message"),
    [("nope", "has no branch 'nope'"), ("main\nx", "not a plain branch name"), ("HEAD", "not a plain branch name"),
     ("--upload-pack=touch /tmp/x", "not a plain branch name")],
)
def test_an_unknown_or_malformed_branch_is_refused(repo, capsys, branch, message):
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A, "--branch", branch]) == 2
    assert message in capsys.readouterr().err
    assert len(log(repo)) == 1


def test_a_pre_receive_hooks_refusal_is_shown_and_not_retried_as_a_lost_race(repo, capsys):
    hook = Path(repo) / "hooks" / "pre-receive"
    counter = Path(repo) / "hook-calls"
    hook.write_text(f"#!/bin/sh\necho x >> {counter}\necho 'manifests are frozen for the audit' >&2\nexit 1\n")
    os.chmod(hook, 0o755)
    assert main(["bump", "--manifests-repo", repo, "--image", IMAGE_A]) == 2
    err = capsys.readouterr().err
    assert "refused the push" in err and "manifests are frozen for the audit" in err
    assert counter.read_text().count("x") == 1
    assert len(log(repo)) == 1
