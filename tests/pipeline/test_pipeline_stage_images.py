"""soilci.pipeline.stage_images: a stage image is keyed by its service's build inputs only."""

from __future__ import annotations

from pathlib import Path

from soilci.pipeline.stage_images import input_digest


def test_image_key_follows_the_services_build_inputs_only(project: Path):
    trainer, drift = input_digest(project, "trainer", "base"), input_digest(project, "drift", "base")
    assert trainer != drift
    assert input_digest(project, "trainer", "other-base") != trainer

    (project / "docs" / "ARCHITECTURE.md").write_text("changed")
    (project / "services" / "trainer" / "src" / "soil_trainer" / "__pycache__").mkdir(exist_ok=True)
    (project / "services" / "trainer" / "src" / "soil_trainer" / "__pycache__" / "x.pyc").write_bytes(b"0")
    assert input_digest(project, "trainer", "base") == trainer

    cli = project / "services" / "trainer" / "src" / "soil_trainer" / "cli.py"
    cli.write_text(cli.read_text() + "\n# changed\n")
    assert input_digest(project, "trainer", "base") != trainer
    assert input_digest(project, "drift", "base") == drift
    (project / "uv.lock").write_text((project / "uv.lock").read_text() + "\n")
    assert input_digest(project, "drift", "base") != drift
