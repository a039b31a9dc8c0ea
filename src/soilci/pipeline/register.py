"""Registration after a good run on main: ``soil-trainer register`` as one more command of the run.

It is not a dvc.yaml stage (it changes the registry, not the tree), so DVC neither tracks nor skips
it; ``soil-trainer register`` itself creates nothing when alias staging already holds this model.
"""

from __future__ import annotations

import re
import shlex

from soilci.errors import ConfigError
from soilci.pipeline.dvc import Stage

NAME = "register"
# The RegisteredVersion record (soil_contracts.records) the model API and CI's publish job read.
REGISTERED_FILE = "runs/registered.json"
# A branch name as git and GitHub spell it; it becomes an MLflow tag and a shell word.
BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")


def register_stage(branch: str | None) -> Stage:
    """The register command; ``branch`` goes to ``--branch`` (the stage images have no git)."""
    args = ["soil-trainer", "register", "--out", REGISTERED_FILE]
    if branch and (not BRANCH.fullmatch(branch) or ".." in branch):
        raise ConfigError(f"--branch {branch!r}: not a plain branch name ({BRANCH.pattern})")
    if branch:
        args += ["--branch", branch]
    return Stage(NAME, shlex.join(args), deps=(), outs=(REGISTERED_FILE,))
