"""The one orchestrator: run dvc.yaml's stages in their service images (or here), recorded by DVC."""
