"""soilci status: the live slot, what each slot runs, and the objects Argo CD syncs."""

from __future__ import annotations

import json

from soilci.cli import main
from soilci.delivery.bump import bump
from tests.delivery.support import IMAGE_A, request


def test_status_reports_live_slot_each_slots_release_and_the_objects_argo_cd_syncs(repo, capsys):
    bump(repo, request(IMAGE_A))
    assert main(["status", "--manifests-repo", repo, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["live"], report["preview"]) == ("blue", "green")
    assert report["slots"]["green"]["image"] == IMAGE_A
    assert report["slots"]["green"]["model_version"] == "7"
    assert report["slots"]["green"]["slot"] == "green"
    assert report["slots"]["blue"]["model_version"] == "none"
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
    assert "slot    role" in table
    assert "green   preview  soil-soc v7" in table and "blue    live     (none)" in table
