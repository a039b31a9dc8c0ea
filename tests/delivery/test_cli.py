"""The delivery verbs at the soilci boundary: a broken manifests repo is bad input (exit 2), never a crash."""

from __future__ import annotations

import pytest

from soilci.cli import main
from tests.delivery.support import IMAGE_A, NO_SERVICE, OVERLAY, log, seed_manifests_repo

VERBS = {
    "status": [],
    "bump": ["--image", IMAGE_A],
    "promote": ["--preview-url", NO_SERVICE, "--tracking-uri", NO_SERVICE],
}


def leave_a_merge_conflict(overlay) -> None:
    """kustomization.yaml as a merge that was committed with its conflict markers."""
    path = overlay / "kustomization.yaml"
    path.write_text(
        path.read_text().replace(
            "    newTag: unreleased\n",
            "<<<<<<< HEAD\n    newTag: unreleased\n=======\n    newTag: 0123456789ab-v7\n>>>>>>> 0123456\n",
            1,
        )
    )


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_kustomization_with_conflict_markers_exits_2_naming_the_file(tmp_path, capsys, verb):
    repo = seed_manifests_repo(tmp_path, leave_a_merge_conflict)
    assert main([verb, "--manifests-repo", repo, *VERBS[verb]]) == 2
    err = capsys.readouterr().err
    assert f"soilci {verb}: error: " in err
    assert f"{OVERLAY}/kustomization.yaml: not valid YAML at line" in err
    assert "conflict markers" in err and "Traceback" not in err
    assert log(repo) == ["seed"]
