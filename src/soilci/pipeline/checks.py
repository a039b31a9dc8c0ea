"""Checks of a project before a run writes anything: where stages read and write, and what git holds.

Each raises ``ConfigError`` (exit 2) naming the path and the fix; ``lock_note`` only advises.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from soil_contracts.errors import ExitCode
from soilci.errors import ConfigError, StageFailed
from soilci.pipeline.dvc import Stage


def _inside(root: Path, path: str) -> bool:
    resolved = (root / path).resolve()
    return resolved == root.resolve() or resolved.is_relative_to(root.resolve())


def _covers(dep: str, path: str) -> bool:
    dep, path = dep.rstrip("/"), path.rstrip("/")
    return path == dep or path.startswith(dep + "/") or dep in (".", "")


def check_inputs(root: Path, stages: list[Stage], library_path: str) -> None:
    """Every path a stage reads or writes is inside the project, and the library is a declared dep.

    Only the project is mounted into stage containers, and DVC only notices changes to declared deps:
    an input outside either would be read stale ("up to date") or not at all.

    Raises:
        ConfigError: a dep/out outside the project, or a stage reading the library without declaring it.
    """
    for stage in stages:
        for kind, paths in (("dep", stage.deps), ("out", stage.outs)):
            for path in paths:
                if Path(path).is_absolute() or not _inside(root, path):
                    raise ConfigError(f"dvc.yaml: stage {stage.name!r}: {kind} {path!r} is outside the "
                                      f"project {root}; stage inputs and outputs must live in the project")
    if Path(library_path).is_absolute() or not _inside(root, library_path):
        raise ConfigError(f"params.yaml library.path {library_path!r} is outside the project {root}")
    for stage in stages:
        if "library" in stage.params and not any(_covers(dep, library_path) for dep in stage.deps):
            raise ConfigError(
                f"dvc.yaml: stage {stage.name!r} reads the library at {library_path!r} (params.yaml "
                f"library.path) but does not declare it as a dep; changes to it would go unnoticed"
            )


def check_outputs_not_in_git(root: Path, stages: list[Stage]) -> None:
    """No stage output is committed to git: DVC owns them (cached, and pushed with ``--push``).

    A project that once committed ``metrics/`` or ``dvc.lock`` results by hand would otherwise run a
    stage and then fail to record it (DVC's OutputAlreadyTrackedError).

    Raises:
        ConfigError: one or more outputs are tracked by git; the message gives the command that fixes it.
    """
    outs = [out for stage in stages for out in stage.outs]
    if not outs or not (root / ".git").exists():
        return
    listed = subprocess.run(["git", "ls-files", "--", *outs], cwd=root, capture_output=True, text=True, check=False)
    tracked = sorted(set(listed.stdout.split())) if listed.returncode == 0 else []
    if tracked:
        raise ConfigError(
            f"{', '.join(tracked[:5])}{' ...' if len(tracked) > 5 else ''}: committed to git, but DVC owns "
            f"the pipeline's outputs (main's results are published with --push; docs/SOP.md). Run "
            f"`git rm -r --cached {' '.join(sorted({t.split('/')[0] for t in tracked}))}` and commit"
        )


def check_output_folders(root: Path, stages: list[Stage], *others: str) -> None:
    """Every folder a run writes into is a folder or can be made one: no file stands on a stage output's path.

    ``others``: what the run writes besides the stages' outputs (its ``runs/<id>/`` record), as paths in
    ``root``. A file named ``reports`` would otherwise surface as a traceback from mkdir halfway through
    the run, after the stages before it ran.

    Raises:
        ConfigError: each blocking file, with what goes inside it (exit 2, before anything is written).
    """
    problems = {}
    for stage, out in [(s.name, o) for s in stages for o in s.outs] + [(None, o) for o in others]:
        for folder in reversed(Path(out).parents[:-1]):  # from the top: the first file found blocks the rest
            if (root / folder).exists() and not (root / folder).is_dir():
                what = f"stage {stage!r} writes {out}" if stage else f"the run writes {out}"
                problems.setdefault(folder.as_posix(), what)
                break
    if problems:
        raise ConfigError("; ".join(f"{folder}: a file where a folder goes ({what} inside it); move or delete it"
                                    for folder, what in sorted(problems.items())))


def check_written(root: Path, stage: Stage, log: Path) -> None:
    """After a stage exited 0: every output dvc.yaml declares for it exists.

    Raises:
        StageFailed: exit 70, naming the missing outputs and the stage's log. DVC's commit would otherwise
            crash the driver with a traceback and no run record (a new user's trial: `soil-drift --help` as
            drift's command, or a --plot path other than the declared one).
    """
    missing = [out for out in stage.outs if not (root / out).exists()]
    if missing:
        raise StageFailed(stage.name, ExitCode.INTERNAL, (
            f"stage {stage.name!r} exited 0 but did not write {', '.join(missing)}, which dvc.yaml declares as "
            f"its output; nothing was recorded (is its cmd right? {stage.cmd}); log: {log}"))


def lock_note(root: Path) -> str:
    """What to do with an untracked ``dvc.lock`` (``git status`` lists it after a run), or "".

    soil-ci neither commits nor ignores it: DVC refuses a git-ignored ``dvc.lock`` (``FileIsGitIgnored``),
    and results are not committed, so two PRs never conflict on them; main's ``soilci pipeline --push``
    publishes its ``dvc.lock`` in the results record of its commit (docs/SOP.md).
    """
    lock = root / "dvc.lock"
    if not lock.exists() or not (root / ".git").exists():
        return ""
    listed = subprocess.run(["git", "ls-files", "--error-unmatch", "dvc.lock"], cwd=root, capture_output=True,
                            check=False)
    if listed.returncode == 0:  # committed: a project of its own that works the DVC default way
        return ""
    return ("dvc.lock is untracked on purpose: leave it out of commits (DVC refuses to have it git-ignored; "
            "main's results, dvc.lock included, are published with --push; docs/SOP.md)")
