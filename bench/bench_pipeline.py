"""Cold vs warm `soilci pipeline`: a fresh clone's first run against a rerun with nothing changed.

Usage: .venv/bin/python bench/bench_pipeline.py [--local] [--keep-images] [--keep]

Cold: a fresh copy of the project (git repo, empty DVC cache, an empty local DVC remote), and, unless
--keep-images, the stage images for the current sources untagged so the run goes through the image
build (Docker's layer cache still applies, as on a developer's machine). Warm: the same command again.
Prints both wall times and their ratio; the goal is warm < 10% of cold.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from tests.support import copy_project


def sh(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)


def untag_stage_images(project: Path) -> list[str]:
    """Remove the stage images built for the project's current sources (the layer cache stays)."""
    import docker.errors

    from soilci.images import docker_client, image_name, resolve_base_image
    from soilci.pipeline.stage_images import input_digest

    client = docker_client()
    base = resolve_base_image(client)
    base_id = client.images.get(base).id
    removed = []
    for service in ("trainer", "drift"):
        ref = image_name(service, "in-" + input_digest(project, service, base_id)[:16])
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(ref, noprune=False)
            removed.append(ref)
    return removed


def timed_pipeline(project: Path, local: bool) -> tuple[float, int, str]:
    cmd = [str(BIN / "soilci"), "pipeline", "--repo", str(project)] + (["--local"] if local else [])
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=os.environ.copy(), check=False)
    return time.perf_counter() - started, proc.returncode, proc.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="benchmark soilci pipeline --local")
    parser.add_argument("--keep-images", action="store_true", help="do not untag the stage images first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soilci-bench-"))
    project = copy_project(work / "project")
    remote = work / "dvc-remote"
    remote.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=project)
    sh(str(BIN / "dvc"), "remote", "add", "-d", "-f", "local", str(remote), cwd=project)
    sh("git", "add", "-A", cwd=project)
    sh("git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench", cwd=project)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # runs go to the copy's mlruns/

    if not args.local and not args.keep_images:
        for ref in untag_stage_images(project):
            print(f"untagged {ref}", file=sys.stderr)

    try:
        cold, code, err = timed_pipeline(project, args.local)
        if code != 0:
            print(err, file=sys.stderr)
            print(f"cold run failed with exit code {code}", file=sys.stderr)
            return code
        warm, code, err = timed_pipeline(project, args.local)
        if code != 0:
            print(err, file=sys.stderr)
            return code
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"project kept in {project}", file=sys.stderr)

    mode = "local" if args.local else "containers"
    ratio = warm / cold
    print(f"soilci pipeline ({mode})")
    print(f"cold  {cold:7.1f} s")
    print(f"warm  {warm:7.1f} s")
    print(f"ratio {ratio:7.1%}  ({'meets' if ratio < 0.10 else 'misses'} the goal: warm < 10% of cold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
