"""What the working tree's last ``soilci pipeline`` run says: its record, the stage that stopped it, and
which stages DVC still calls stale."""

from __future__ import annotations

from pathlib import Path

from soil_contracts.errors import ContractError
from soil_contracts.records import RunRecord
from soilci.revision import tree_state


def stale_stages(repo: Path) -> list[str] | None:
    """Stages whose outputs do not match the working tree, in dvc.yaml's order; None if DVC cannot tell.

    DVC's status names a stage whose own deps changed; every stage downstream of one (a dep under its
    outputs) is stale too, though its deps on disk are as dvc.lock records them: after a new batch,
    ``prepare`` has not rewritten the data ``drift`` reads, and drift.json is the old data's verdict.
    """
    if not (repo / "dvc.yaml").exists():
        return None
    try:
        from soilci.pipeline.dvc import open_repo, stages_of, upstream_of

        with open_repo(repo) as dvc_repo:
            names = [s.name for s in dvc_repo.index.stages if getattr(s, "name", None)]
            if not names:
                return None
            status = dvc_repo.status(targets=names)
            stages = stages_of(dvc_repo)  # lineage order
    except Exception:  # noqa: BLE001 - DVC raises many types for a broken or partial checkout
        return None
    stale = {k.split(":")[-1] for k in status}
    for stage in stages:  # in lineage order: a stage's upstream stages are settled before it
        if upstream_of(stage, stages) & stale:
            stale.add(stage.name)
    order = {name: i for i, name in enumerate(names)}
    return sorted(stale, key=lambda n: order.get(n, len(order)))


def latest_run(repo: Path) -> RunRecord | None:
    """The latest ``soilci pipeline`` run (runs/<run_id>/run.json) when it is a run of this tree: of its HEAD
    commit and, when the record has it, of its uncommitted changes (``soilci.revision.tree_state``); else None.

    runs/, metrics/ and reports/ are not in git: they keep what the last run wrote, whichever branch or
    commit was checked out then. A run of another one says nothing of this tree (and its outputs may have
    replaced this tree's), so it is not used; nor is an unreadable record, or one without a commit.
    """
    runs = sorted((repo / "runs").glob("*/run.json"))
    if not runs:
        return None
    try:
        run = RunRecord.load(runs[-1])
    except ContractError:
        return None
    commit, changes = tree_state(repo)
    if commit is None or run.commit != commit or (run.tree is not None and run.tree != changes):
        return None
    return run


def gate_stop(run: RunRecord | None) -> str | None:
    """The stage whose gate said no in ``run`` (it stopped there with exit 1: ``drift`` or ``evaluate``), else None.

    A gate's stage writes its outputs before it says no (drift.json; evaluate's metrics and predictions),
    but the pipeline does not record them in dvc.lock, so the next run asks the gate again: DVC calls the
    stage stale, yet its outputs in the tree are this run's.
    """
    if run is None or run.exit_code != 1 or run.stopped_at is None:
        return None
    rec = next((s for s in run.stages if s.name == run.stopped_at), None)
    return rec.name if rec is not None and rec.outcome == "failed" and rec.exit_code == 1 else None


def reproduced_stages(run: RunRecord) -> list[str]:
    """The stages a run ran or restored from the cache: their outputs are new in the tree."""
    return [s.name for s in run.stages if s.outcome in {"ran", "restored"}]


def stage_failure(repo: Path, run: RunRecord | None) -> str:
    """Why the run's failed stage stopped, from its log: ``drift (exit 2): data/incoming.parquet: 5 rows,
    fewer than the 20 the tests need (drift.min_rows)``; "" when no stage failed or its log says nothing.

    The stage's console script prints its one error line as ``<prog>: error: <message>`` (the CLI
    boundary, ``soil_contracts.cli``); the last such line is the reason.
    """
    failed = next((s for s in (run.stages if run else []) if s.outcome == "failed"), None)
    if failed is None:
        return ""
    message = ""
    if failed.log:
        try:
            lines = (Path(repo) / failed.log).read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        message = next((line.split(": error: ", 1)[1].strip() for line in reversed(lines) if ": error: " in line), "")
    code = f"exit {failed.exit_code}" if failed.exit_code is not None else "failed"
    return f"{failed.name} ({code}): {message}" if message else ""
