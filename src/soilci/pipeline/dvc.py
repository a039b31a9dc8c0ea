"""DVC on the host: dvc.yaml's stages in order, what is stale, the run-cache and commit (pull and push: ``remote``).

DVC stays the judge of what is stale and the keeper of dvc.lock and the cache; the driver only runs
each stale stage's ``cmd:`` somewhere else (see ``runners``) and records it as ``dvc repro`` would.

Each operation takes the project's root, for a ``Repo`` of its own, or a run's ``DvcRepo``, which keeps
one open for all of them.
"""

from __future__ import annotations

import contextlib
import graphlib
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from soilci.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    """One command the driver runs: a dvc.yaml stage (or registration, which no stage records)."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[str, ...] = ()  # params.yaml keys the stage declares

    @property
    def service(self) -> str:
        """The image a stage runs in, from its command's program (``soil-drift ...`` -> ``drift``)."""
        program = shlex.split(self.cmd)[0] if self.cmd.strip() else ""
        if not program.startswith("soil-"):
            raise ConfigError(f"dvc.yaml: stage {self.name!r}: cmd must start with a soil-<service> program")
        return program.removeprefix("soil-")


class DvcRepo:
    """One DVC ``Repo`` for a whole run, opened on first use and reset before each operation.

    A new ``Repo`` costs about 0.1 CPU-s before its first operation is done (config, git, state database),
    as much as a one-stage ``status``, and a run asks a dozen. Before each operation the open one drops
    everything it cached about the tree (``Repo._reset``: stage index, .dvcignore, config, git state), as
    DVC's own locked operations do on entry, so every operation sees the tree as a freshly opened ``Repo``
    would, after whatever a stage wrote.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._repo = None

    @contextlib.contextmanager
    def open(self) -> Iterator:
        """The ``Repo``, reset to what the tree holds now, with the working directory at the project's root."""
        # DVC resolves some paths against the working directory, as its CLI runs from the repo.
        with contextlib.chdir(self.root):
            if self._repo is None:
                import logging

                from dvc.repo import Repo

                # DVC's progress messages ("Updating lock file") would interleave with ours; its warnings stay.
                logging.getLogger("dvc").setLevel(logging.WARNING)
                self._repo = Repo(str(self.root))
            else:
                self._repo._reset()
            yield self._repo

    def close(self) -> None:
        """Close the ``Repo`` (git and state database handles); a later operation opens a new one."""
        if self._repo is not None:
            repo, self._repo = self._repo, None
            repo.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def open_repo(root: Path | DvcRepo) -> Iterator:
    """A DVC ``Repo`` for one operation, opened from inside the project as the ``dvc`` CLI is: ``root``'s open
    one (a run's ``DvcRepo``), or for a path a new one, closed after it."""
    if isinstance(root, DvcRepo):
        with root.open() as repo:
            yield repo
        return
    with DvcRepo(root) as once, once.open() as repo:
        yield repo


def _root(root: Path | DvcRepo) -> Path:
    return root.root if isinstance(root, DvcRepo) else root


def load_stages(root: Path | DvcRepo) -> list[Stage]:
    """dvc.yaml's stages in dependency order (file order among independent stages).

    Raises:
        ConfigError: no dvc.yaml under ``root``, or DVC cannot read it.
    """
    if not (_root(root) / "dvc.yaml").exists():
        raise ConfigError(f"{_root(root) / 'dvc.yaml'}: not found; --repo must be the project's working tree")
    try:
        with open_repo(root) as repo:
            found = _declared(repo)
    except Exception as exc:  # DVC's own errors: not a DVC repo, bad dvc.yaml
        raise ConfigError(f"{_root(root)}: DVC cannot read the pipeline ({type(exc).__name__}: {exc})") from exc
    return _in_lineage_order(found)


def stages_of(repo) -> list[Stage]:
    """The stages of an open DVC ``Repo`` (``open_repo``), in dependency order; DVC's errors propagate."""
    return _in_lineage_order(_declared(repo))


def upstream_of(stage: Stage, stages: list[Stage]) -> set[str]:
    """The names of the other stages whose outputs ``stage`` depends on (a dep equal to, or under, an output)."""
    return {s.name for s in stages if s.name != stage.name
            for out in s.outs for dep in stage.deps if dep == out or dep.startswith(out.rstrip("/") + "/")}


def _declared(repo) -> list[Stage]:
    """dvc.yaml's stages with a command, in file order."""
    return [
        Stage(
            name=s.name,
            cmd=s.cmd if isinstance(s.cmd, str) else " && ".join(s.cmd),
            deps=tuple(d.def_path for d in s.deps if not hasattr(d, "params")),
            outs=tuple(o.def_path for o in s.outs),
            params=tuple(str(k) for d in s.deps if hasattr(d, "params") for k in (d.params or ())),
        )
        for s in repo.index.stages
        if getattr(s, "name", None) and s.cmd
    ]


def _in_lineage_order(found: list[Stage]) -> list[Stage]:
    order = {s.name: i for i, s in enumerate(found)}
    graph = graphlib.TopologicalSorter()
    for s in found:
        graph.add(s.name, *upstream_of(s, found))
    graph.prepare()
    ordered: list[str] = []
    while graph.is_active():
        ready = sorted(graph.get_ready(), key=order.__getitem__)
        ordered.extend(ready)
        graph.done(*ready)
    by_name = {s.name: s for s in found}
    return [by_name[n] for n in ordered]


def is_stale(root: Path | DvcRepo, name: str) -> bool:
    """Whether DVC sees the stage's deps, params, command or outputs differ from dvc.lock."""
    with open_repo(root) as repo:
        return bool(repo.status(targets=[name]))


def repo_status(root: Path | DvcRepo) -> dict[str, list]:
    """``dvc status``: every stage and ``.dvc`` file that is not as recorded, and what differs.

    ``stage_changes`` and ``tracked_changes`` split it; one call serves both while nothing writes to the tree.
    """
    with open_repo(root) as repo:
        return repo.status()


def stage_changes(status: dict[str, list]) -> dict[str, list]:
    """dvc.yaml's stages in a ``status``: stage name -> what changed (empty: all up to date)."""
    return {key.split(":")[-1]: value for key, value in status.items() if not key.endswith(".dvc")}


def changed_stages(root: Path | DvcRepo) -> dict[str, list]:
    """``dvc status`` of dvc.yaml's stages: stage name -> what changed (empty: all up to date).

    Files tracked by ``.dvc`` files (the library's spectra) are not stages: see ``tracked_data``.
    """
    return stage_changes(repo_status(root))


def tracked_data(root: Path | DvcRepo) -> dict[str, dict[str, str]]:
    """``.dvc`` file -> {path: state} for tracked data that is not as recorded (``deleted``, ``not in cache``)."""
    return tracked_changes(repo_status(root))


def tracked_changes(status: dict[str, list]) -> dict[str, dict[str, str]]:
    """The ``.dvc`` files in a ``status``, as ``tracked_data`` gives them."""
    changed: dict[str, dict[str, str]] = {}
    for key, entries in status.items():
        if key.endswith(".dvc"):
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("changed outs"), dict):
                    changed.setdefault(key, {}).update(entry["changed outs"])
    return changed


def cache_tracked(root: Path | DvcRepo, dvc_files: list[str]) -> None:
    """``dvc commit -f`` each ``.dvc`` file: files present as recorded but not in the cache (restored
    outside DVC, e.g. by ``soilci library demo``) go into the cache, so a push can send them."""
    with open_repo(root) as repo:
        for target in dvc_files:
            repo.commit(target, force=True)


def outputs_missing(status: dict[str, list]) -> bool:
    """Whether some recorded output is absent or altered, so pulling the cache could restore it."""
    return any("changed outs" in entry for entries in status.values() for entry in entries
               if isinstance(entry, dict))


def restore_from_run_cache(root: Path | DvcRepo, name: str) -> bool:
    """Check the stage's outputs out of DVC's run-cache if this exact run happened before."""
    from dvc.stage.cache import RunCacheNotFoundError

    try:
        with open_repo(root) as repo, repo.lock:
            (stage,) = repo.stage.collect(name)
            repo.stage_cache.restore(stage)
    except RunCacheNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - a partial cache (objects gc'ed) means: run the stage
        return False
    commit_stage(root, name)
    return True


def commit_stage(root: Path | DvcRepo, name: str) -> None:
    """``dvc commit -f <stage>``: record outputs in the cache and dvc.lock, as ``dvc repro`` does."""
    with open_repo(root) as repo:
        repo.commit(name, force=True)


def remove_outputs(root: Path, stage: Stage) -> None:
    """Delete a stage's outputs, as ``dvc repro`` does before it runs one, so none survives a failure.

    Also the temp files ``soil_contracts.files.atomic_path`` writes beside a file output
    (``.<name>.<random>.tmp``), which a stage killed mid-write leaves behind.
    """
    for out in stage.outs:
        path = root / out
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if path.parent.is_dir():
            for temp in path.parent.glob(f".{path.name}.*.tmp"):
                temp.unlink(missing_ok=True)
