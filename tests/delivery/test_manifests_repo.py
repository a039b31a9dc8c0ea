"""Commits to the manifests repo: racing pushes both land, and a token in its URL is never printed."""

from __future__ import annotations

import threading

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
