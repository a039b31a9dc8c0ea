"""The base revision's library, read from git: what ``prepare`` compares the branch's library with."""

from __future__ import annotations

import subprocess
from pathlib import Path

from soil_contracts.errors import ContractError
from soil_contracts.library import (
    BASE_LISTING,
    BATCH_FILE,
    BATCHES_DIR,
    BENCHMARK_DIR,
    BaseLibrary,
    BatchMetadata,
    LibrarySpec,
)
from soilci.errors import ConfigError

BASE_FILE = Path(BASE_LISTING)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def _meta_at(repo: Path, commit: str, path: str) -> BatchMetadata:
    shown = _git(repo, "show", f"{commit}:{path}")
    if shown.returncode != 0:
        raise ConfigError(f"{commit[:12]}:{path}: cannot read ({shown.stderr.strip()})")
    import yaml

    try:
        return BatchMetadata.parse(yaml.safe_load(shown.stdout), where=f"{commit[:12]}:{path}")
    except (ContractError, yaml.YAMLError) as exc:
        raise ConfigError(str(exc)) from None


# Where a branch usually comes from, in order, when --base is not given.
DEFAULT_BASES = ("origin/main", "main", "HEAD")


def resolve_base(repo: Path, ref: str | None) -> tuple[str, str | None]:
    """``(ref, commit)``: ``ref`` resolved, or the first of DEFAULT_BASES that resolves.

    No git repository (or none of the defaults resolving) gives ``(ref, None)``: an empty base.
    Raises ConfigError when an explicit ``ref`` is empty or does not resolve in a git repository.
    """
    if ref is not None and not ref.strip():
        raise ConfigError(f"--base {ref!r}: empty; name a revision, or leave --base out for the default "
                          f"({', '.join(DEFAULT_BASES)}: the first that exists)")
    for candidate in [ref] if ref else DEFAULT_BASES:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").stdout.strip()
        if commit:
            return candidate, commit
    if ref and _git(repo, "rev-parse", "--git-dir").returncode == 0:
        raise ConfigError(f"--base {ref}: not a revision of {repo} (fetch it, e.g. git fetch origin main)")
    return ref or DEFAULT_BASES[0], None


def base_library(repo: Path, ref: str | None, spec: LibrarySpec) -> BaseLibrary:
    """The library's batches (id -> content hash) and benchmark hash at ``ref`` (see ``resolve_base``).

    Raises ConfigError when ``ref`` does not resolve or a batch.yaml at the base is unreadable.
    """
    ref, commit = resolve_base(repo, ref)
    if not commit:
        return BaseLibrary(ref=ref)
    prefix = f"{spec.path.rstrip('/')}/"
    listed = _git(repo, "ls-tree", "-r", "--name-only", commit, "--", prefix)
    batches: dict[str, str] = {}
    benchmark = None
    for path in listed.stdout.splitlines():
        parts = Path(path).relative_to(spec.path).parts
        if parts == (BENCHMARK_DIR, BATCH_FILE):
            benchmark = _meta_at(repo, commit, path).content_sha256
        elif len(parts) == 3 and parts[0] == BATCHES_DIR and parts[2] == BATCH_FILE:
            batches[parts[1]] = _meta_at(repo, commit, path).content_sha256
    return BaseLibrary(ref=ref, commit=commit, batches=batches, benchmark_sha256=benchmark)


def write_base_listing(repo: Path, ref: str | None, spec: LibrarySpec) -> BaseLibrary:
    """Write ``.soilci/base.json``: the base's batches and benchmark hash, not its ref or commit, and only
    when they change, so DVC reruns ``prepare`` when the base's library changes and not otherwise."""
    listing = base_library(repo, ref, spec)
    content = listing.model_copy(update={"ref": None, "commit": None})
    path = Path(repo) / BASE_FILE
    if not path.exists() or path.read_text() != content.to_json():
        content.save(path)
    return listing
