"""prepare stage: the spectral library -> the stage inputs, all written together or not at all.

Reads every batch and the benchmark (validated, see ``soil_trainer.library``), and the base revision's
listing (``.soilci/base.json``, written by ``soilci pipeline``), then writes:

| file | rows |
| --- | --- |
| ``reference.parquet`` | batches unchanged since the base: the drift gate's reference |
| ``incoming.parquet`` | batches the branch adds or replaces: the drift gate's candidate |
| ``training.parquet`` | every batch, each sample once, without rows waiting for a lab value |
| ``benchmark.parquet`` | the fixed benchmark set |
| ``library.json`` | the data diff: each batch's status and counts, the benchmark's content hash |

Each table has ``sample_id``, ``batch``, the target, then the grid's band columns. Reference, incoming
and training hold each sample once (``assemble``: a duplicate spectrum is dropped from all of them).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from soil_contracts.errors import ContractError
from soil_contracts.library import BASE_LISTING, BaseLibrary, BatchState, LibrarySpec, LibrarySummary
from soil_trainer.config import PrepareParams
from soil_trainer.errors import DataError
from soil_trainer.library.assemble import BATCH_COLUMN, Assembled, assemble
from soil_trainer.library.content import content_sha256
from soil_trainer.library.store import list_batch_dirs, read_batch
from soil_trainer.tables import BENCHMARK, INCOMING, LIBRARY_SUMMARY, REFERENCE, TRAINING

log = logging.getLogger(__name__)


def read_base(path: Path) -> BaseLibrary:
    """The base listing; DataError when absent (``soilci pipeline`` or ``soilci library base`` writes it)."""
    if not Path(path).exists():
        raise DataError(f"{path}: no base listing; 'soilci pipeline --base REF' (or 'soilci library base "
                        "--base REF') writes it from git before prepare runs")
    try:
        return BaseLibrary.load(path)
    except ContractError as exc:
        raise DataError(str(exc)) from None


def prepare_library(root: Path, spec: LibrarySpec, params: PrepareParams, base: BaseLibrary) -> Assembled:
    """Read the library under ``root`` and split it (see ``assemble``). Raises DataError on bad batches."""
    bench_dir = spec.benchmark_dir(root)
    if not (bench_dir / "batch.yaml").exists():
        raise DataError(f"{bench_dir}: no benchmark set; import one with 'soilci library import ... --benchmark' "
                        "(or 'soilci library demo')")
    benchmark = read_batch(bench_dir, spec)
    batches = [read_batch(d, spec) for d in list_batch_dirs(root, spec)]
    if not batches:
        raise DataError(f"{Path(root) / spec.path}: no batches to train on; import one with 'soilci library import'")
    return assemble(batches, benchmark, base, spec, params.target, params.unit)


def summarize(assembled: Assembled, base: BaseLibrary, params: PrepareParams) -> LibrarySummary:
    """The data diff that travels to the report."""
    return LibrarySummary(
        target=params.target, unit=params.unit,
        benchmark_sha256=content_sha256(assembled.benchmark.drop(columns=[BATCH_COLUMN])),
        benchmark_rows=len(assembled.benchmark),
        benchmark_changed=assembled.benchmark_changed, reference_rows=len(assembled.reference),
        candidate_rows=len(assembled.candidate), training_rows=len(assembled.training),
        batches=[BatchState(**vars(b)) for b in assembled.batches], duplicates=assembled.duplicates,
    )


def write_prepared(assembled: Assembled, summary: LibrarySummary, out_dir: Path) -> dict[str, Path]:
    """Write the five outputs into temp files first, then rename them all: no half-written set."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {REFERENCE: assembled.reference, INCOMING: assembled.candidate, TRAINING: assembled.training,
              BENCHMARK: assembled.benchmark}
    staged: dict[str, Path] = {}
    try:
        for name, frame in tables.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            os.close(fd)
            frame.to_parquet(tmp, index=False)
            staged[name] = Path(tmp)
        fd, tmp = tempfile.mkstemp(prefix=f".{LIBRARY_SUMMARY}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        Path(tmp).write_text(summary.to_json())
        staged[LIBRARY_SUMMARY] = Path(tmp)
        for path in staged.values():
            os.chmod(path, 0o644)
        for name, tmp_path in staged.items():
            os.replace(tmp_path, out_dir / name)
    finally:
        for tmp_path in staged.values():
            tmp_path.unlink(missing_ok=True)
    for name, frame in tables.items():
        log.info("wrote %s (%d rows)", out_dir / name, len(frame))
    return {name: out_dir / name for name in staged}


def run(params_path: Path, params: PrepareParams, spec: LibrarySpec, out_dir: Path, base_path: Path | None) -> LibrarySummary:
    """The prepare stage: the library under the params file's folder -> ``out_dir``."""
    root = Path(params_path).parent
    base = read_base(base_path or root / BASE_LISTING)
    assembled = prepare_library(root, spec, params, base)
    summary = summarize(assembled, base, params)
    write_prepared(assembled, summary, out_dir)
    return summary
