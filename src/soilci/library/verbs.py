"""``soilci library import | list | demo``: the operator side of the spectral library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soil_contracts.library import LibrarySpec
from soilci.errors import ConfigError

# The README's main job: LimeSoDa SSP.460 (Schmidinger & Heuvelink 2023) split by its own folds into the
# fixed benchmark set and a first batch. Fold 3 is left for the "use your own data" walk-through.
DEMO_SOURCE = "limesoda:SSP.460"
DEMO_TARGETS = {"SOC_target": "%", "pH_target": "pH", "Clay_target": "%"}
DEMO_BATCHES = (
    ("benchmark", [1, 2], "LimeSoDa SSP.460 folds 1-2: the fixed benchmark set"),
    ("ssp460-campaign-1", [4, 5, 6, 7, 8, 9, 10], "LimeSoDa SSP.460 folds 4-10"),
)


def load_spec(repo: Path, params: Path | None) -> LibrarySpec:
    """params.yaml ``library:`` as a LibrarySpec; ConfigError names the key."""
    from soilci.params import Params

    return Params.load(params or Path(repo) / "params.yaml").library


def _targets(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, unit = pair.partition("=")
        if not sep or not column.strip() or not unit.strip():
            raise ConfigError(f"--target {pair!r}: expected COLUMN=UNIT, e.g. SOC_target=%")
        out[column.strip()] = unit.strip()
    return out


def _folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--folds {text!r}: expected comma-separated integers, e.g. 1,2") from None


def _dvc_add(repo: Path, spectra: Path) -> None:
    from soilci.pipeline.dvc import open_repo

    with open_repo(repo) as dvc:
        dvc.add(str(spectra.relative_to(repo)))


def _import(repo: Path, spec, req, *, benchmark: bool, replace: bool, dvc: bool):
    from soil_contracts.library import SPECTRA_FILE
    from soil_trainer.errors import SoilTrainerError
    from soil_trainer.library.importer import import_batch

    try:
        result = import_batch(req, spec, repo, benchmark=benchmark, replace=replace)
    except SoilTrainerError as exc:
        raise ConfigError(str(exc)) from None
    if dvc and (repo / ".dvc").is_dir():
        _dvc_add(repo, result.batch.path / SPECTRA_FILE)
    return result


def run_import(args: argparse.Namespace) -> int:
    from soil_contracts.bands import SpectralAxis
    from soil_contracts.library import Scale
    from soil_trainer.library.importer import BatchRequest
    from soilci.params import Params

    repo = args.repo.resolve()
    if args.batch == "benchmark" and not args.benchmark:
        raise ConfigError("--batch benchmark: that id names the benchmark set (library/benchmark), which "
                          "`soilci library list` shows as 'benchmark'; give the batch another id")
    params = Params.load(args.params or repo / "params.yaml")
    spec = params.library
    targets = _targets(args.target)
    declared = targets.get(params.prepare.target)
    if declared is not None and declared != params.prepare.unit:
        raise ConfigError(f"--target {params.prepare.target}={declared}: the library's models predict "
                          f"{params.prepare.target} in {params.prepare.unit!r} (params.yaml prepare.unit); "
                          "convert the values first or fix the unit")
    req = BatchRequest(
        source=args.source, batch_id=args.batch, instrument=args.instrument, lab=args.lab, date=args.date,
        axis=SpectralAxis(args.axis) if args.axis else None, scale=Scale(args.scale) if args.scale else None,
        targets=targets, id_column=args.id_column, description=args.description,
        folds=_folds(args.folds),
    )
    result = _import(repo, spec, req, benchmark=args.benchmark, replace=args.replace, dvc=not args.no_dvc)
    meta = result.batch.meta
    rel = result.batch.path.relative_to(repo)
    print(f"{rel}: {meta.rows} samples, {len(spec.grid.positions())} bands ({spec.axis.value}, {spec.scale.value}); "
          f"pending lab values: {', '.join(f'{k} {v}' for k, v in meta.pending.items())}", file=sys.stderr)
    for column, limits in meta.target_ranges.items():
        if limits is None:
            print(f"  {column} in {meta.targets[column]!r}: the unit has no declared physical range "
                  "(soil_contracts.units), so its values were not checked; batch.yaml records target_ranges: "
                  f"{{{column}: null}}", file=sys.stderr)
    for dup in result.duplicates_in_library[:10]:
        print(f"  duplicate of the library: {dup.sample} = {dup.of} in {dup.of_batch} (rms {dup.rms:.3g}); "
              "it is not tested or trained on twice", file=sys.stderr)
    if result.ignored_columns:
        print(f"  ignored columns: {', '.join(result.ignored_columns[:10])}", file=sys.stderr)
    print(f"next: git add {rel} && dvc push && git commit", file=sys.stderr)
    print(rel)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from soil_trainer.errors import SoilTrainerError
    from soil_trainer.library.store import list_batch_dirs, read_batch

    repo = args.repo.resolve()
    spec = load_spec(repo, args.params)
    dirs = ([spec.benchmark_dir(repo)] if spec.benchmark_dir(repo).exists() else []) + list_batch_dirs(repo, spec)
    rows = []
    for directory in dirs:
        try:
            meta = read_batch(directory, spec).meta
        except SoilTrainerError as exc:
            raise ConfigError(str(exc)) from None
        rows.append((meta.id, str(meta.rows), str(sum(meta.pending.values())), meta.instrument, meta.date,
                     meta.source.file))
    header = ("batch", "rows", "pending", "instrument", "date", "source")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:  # columns as wide as their longest value: nothing is cut
        cells = [v.rjust(w) if i in (1, 2) else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
    return 0


def run_accept(args: argparse.Namespace) -> int:
    """Record (or, with ``--withdraw``, remove) a lead's acceptance of one batch's drift in its batch.yaml.

    The acceptance names the batch content it was given for (``content_sha256``), read from the batch
    after its spectra are checked against it, so it cannot outlive a change of the data.

    Raises:
        ConfigError: no such batch, its spectra are missing or differ from batch.yaml, or the reason or
            name is empty.
    """
    from soil_contracts.library import BATCH_FILE, DriftAcceptance
    from soil_trainer.errors import SoilTrainerError
    from soil_trainer.library.store import read_batch

    repo = args.repo.resolve()
    spec = load_spec(repo, args.params)
    directory = spec.batch_dir(repo, args.batch)
    if not (directory / BATCH_FILE).is_file():
        raise ConfigError(f"{directory.relative_to(repo)}: no such batch (soilci library list shows them)")
    try:
        meta = read_batch(directory, spec).meta
        acceptance = None if args.withdraw else DriftAcceptance(
            reason=args.reason or "", by=args.by or "", content_sha256=meta.content_sha256)
    except SoilTrainerError as exc:
        raise ConfigError(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError: an empty reason or name
        raise ConfigError(f"--reason and --by are required to accept a batch's drift ({exc.errors()[0]['loc'][0]}: "
                          f"{exc.errors()[0]['msg']})") from None
    meta.model_copy(update={"drift_acceptance": acceptance}).save(directory / BATCH_FILE)
    rel = (directory / BATCH_FILE).relative_to(repo)
    what = "withdrew the drift acceptance" if args.withdraw else f"accepted the drift of {meta.rows} samples"
    print(f"{rel}: {what}; next: git add {rel} && git commit (it is reviewed in the pull request)", file=sys.stderr)
    return 0


def demo_batches_to_import(repo: Path, spec: LibrarySpec) -> list[tuple[str, list[int], str]]:
    """The demo batches to (re)import: all of them into an empty library; else those whose batch.yaml
    says they are the demo's and whose spectra are missing (a fresh clone without a DVC remote).
    Batches of the lab's own are never touched."""
    from soil_contracts.errors import ContractError
    from soil_contracts.library import BatchMetadata

    bench = spec.benchmark_dir(repo)
    if not bench.exists():
        from soil_trainer.library.store import list_batch_dirs  # pandas and pandera: only for this question

        if not list_batch_dirs(repo, spec):
            return list(DEMO_BATCHES)
    wanted = []
    for batch_id, folds, description in DEMO_BATCHES:
        target = bench if batch_id == "benchmark" else spec.batch_dir(repo, batch_id)
        try:
            meta = BatchMetadata.load(target / "batch.yaml")
        except ContractError:
            continue
        if meta.source.file == DEMO_SOURCE and not (target / "spectra.parquet").exists():
            wanted.append((batch_id, folds, description))
    return wanted


def run_demo(args: argparse.Namespace) -> int:
    """Build the demo library (an empty library), or restore its spectra (a fresh clone); else nothing."""
    repo = args.repo.resolve()
    spec = load_spec(repo, args.params)
    todo = demo_batches_to_import(repo, spec)
    if not todo:
        print("soilci library demo: nothing to do (the library has its spectra)", file=sys.stderr)
        return 0
    # Only now: the importer brings pandas and pandera, which a library with its spectra never needs
    # (compose's pipeline service runs this verb before every run).
    from soil_contracts.library import Scale
    from soil_trainer.library.importer import BatchRequest

    written = []
    for batch_id, folds, description in todo:
        benchmark = batch_id == "benchmark"
        req = BatchRequest(
            source=DEMO_SOURCE, batch_id=batch_id, instrument="vis-NIR spectrometer (LimeSoDa SSP.460)",
            lab="LimeSoDa", date="see LimeSoDa SSP.460", axis=None, scale=Scale.REFLECTANCE_PERCENT,
            targets=DEMO_TARGETS, description=description, folds=folds,
        )
        result = _import(repo, spec, req, benchmark=benchmark, replace=True, dvc=not args.no_dvc)
        written.append(result.batch.path)
        print(f"{result.batch.path.relative_to(repo)}: imported {result.batch.meta.rows} samples from "
              f"{DEMO_SOURCE}", file=sys.stderr)
    from soilci.pipeline.ownership import hand_back

    hand_back(repo, [repo / spec.path, repo / ".dvc"])
    return 0


def run_base(args: argparse.Namespace) -> int:
    from soilci.library.base import BASE_FILE, write_base_listing

    repo = args.repo.resolve()
    listing = write_base_listing(repo, args.base, load_spec(repo, args.params))
    where = listing.commit[:12] if listing.commit else "unresolved: every batch counts as new"
    print(f"{BASE_FILE}: {args.base} ({where}), {len(listing.batches)} batches", file=sys.stderr)
    return 0
