"""What a PR changed since its base: params, library batches, the chosen model, and code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from soil_contracts.errors import ContractError
from soil_contracts.library import LibrarySummary
from soil_contracts.model import ModelMetadata
from soilci.report.inputs import PARAMS_PATH, git_run, git_show

LIBRARY_PATH = "data/library.json"
MODEL_PATH = "models/model/soilci.json"
CODE_DIRS = ("services", "src", "libs")
ABSENT = object()  # a key only one side's params.yaml has


@dataclass(frozen=True)
class ParamChange:
    """One dotted params key whose value differs (``dvc params diff``); ABSENT when a side lacks it."""

    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class FileChange:
    path: str
    added: int | None  # lines; None for a binary file
    deleted: int | None


@dataclass(frozen=True)
class Changes:
    """The facts of the report's "What changed" section; None where a side's file is missing."""

    params: list[ParamChange]
    library: LibrarySummary | None
    model: ModelMetadata | None
    base_model: ModelMetadata | None
    code: list[FileChange]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _yaml(text: str | None) -> dict:
    try:
        loaded = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def params_diff(base_text: str | None, tree_text: str | None) -> list[ParamChange]:
    """Keys (dotted, sorted) whose value differs between two params.yaml texts, as ``dvc params diff``."""
    old, new = _flatten(_yaml(base_text)), _flatten(_yaml(tree_text))
    return [ParamChange(k, old.get(k, ABSENT), new.get(k, ABSENT))
            for k in sorted(set(old) | set(new)) if old.get(k, ABSENT) != new.get(k, ABSENT)]


def code_diff(repo: Path, base_sha: str) -> list[FileChange]:
    """Files under services/, src/ and libs/ that differ between ``base_sha`` and the working tree."""
    proc = git_run(repo, "diff", "--numstat", base_sha, "--", *CODE_DIRS)
    files = []
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        added, deleted, path = line.split("\t", 2)
        files.append(FileChange(path, None if added == "-" else int(added), None if deleted == "-" else int(deleted)))
    return files


def _model(text: str | None, where: str) -> ModelMetadata | None:
    if not text:
        return None
    try:
        return ModelMetadata.parse(json.loads(text), where=where)
    except (ValueError, ContractError):
        return None


def read_library(repo: Path) -> LibrarySummary | None:
    """The working tree's ``data/library.json``; None when it is missing or unreadable."""
    if not (repo / LIBRARY_PATH).exists():
        return None
    try:
        return LibrarySummary.load(repo / LIBRARY_PATH)
    except ContractError:
        return None


def replaced_base(library: LibrarySummary | None) -> str:
    """The base's batches when the branch left none of them unchanged (``ssp460-campaign-1 replaced``), else "".

    Then the drift gate's reference is empty although the base has a library: the report must not say
    the base has none.
    """
    if library is None or any(b.status == "unchanged" for b in library.batches):
        return ""
    return ", ".join(f"{b.id} {b.status}" for b in library.batches if b.status in {"replaced", "removed"})


def value_conflicts(library: LibrarySummary | None, limit: int = 3) -> str:
    """Copies of one spectrum with different lab values (``rescan-1 in b (2.1) vs S1 in a (1.8)``), or ""."""
    found = [d for d in (library.duplicates if library else []) if d.get("kind") == "conflict"]
    named = "; ".join(f"{d['sample']} in {d['batch']} ({d.get('value'):g}) vs {d['of']} in {d['of_batch']} "
                      f"({d.get('of_value'):g})" for d in found[:limit])
    return named + (f" and {len(found) - limit} more" if len(found) > limit else "")


def filled_by_branch(library: LibrarySummary | None) -> str:
    """Pending samples whose lab value a batch this branch adds or replaces brings (``46 pending samples got lab
    values from p2``), or "". A PR that only sends lab values adds no new spectra, but it is not "no new
    samples" either: these rows are trained on from now on."""
    if library is None:
        return ""
    changed = {b.id for b in library.batches if b.status in {"added", "replaced"}}
    found = [d for d in library.duplicates if d.get("kind") == "filled" and d.get("of_batch") in changed]
    if not found:
        return ""
    sources = sorted({str(d["of_batch"]) for d in found})
    what = "pending sample got its lab value" if len(found) == 1 else "pending samples got lab values"
    return f"{len(found)} {what} from {', '.join(sources)}"


def read_changes(repo: Path, base_sha: str, base_model: str | None = None,
                 library: LibrarySummary | None = None) -> Changes:
    """Gather the "What changed" facts; unreadable or missing files leave their part empty, never fail.

    ``base_model``: the base model's soilci.json text when git does not hold it (main's published results).
    ``library``: the tree's ``data/library.json`` when the caller has read it already (``read_library``).
    """
    tree_params = repo / PARAMS_PATH
    library = library if library is not None else read_library(repo)
    model_file = repo / MODEL_PATH
    return Changes(
        params=params_diff(git_show(repo, base_sha, PARAMS_PATH),
                           tree_params.read_text() if tree_params.exists() else None),
        library=library,
        model=_model(model_file.read_text() if model_file.exists() else None, str(model_file)),
        base_model=_model(git_show(repo, base_sha, MODEL_PATH) or base_model, f"{base_sha[:7]}:{MODEL_PATH}"),
        code=code_diff(repo, base_sha),
    )
