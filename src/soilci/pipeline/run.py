"""The run: dvc.yaml's stale stages in order, then push and registration, recorded in runs/<id>/run.json.

On the host, each stage DVC reports as changed is first looked up in DVC's run-cache, else its
``cmd:`` runs in the stage's image with the working tree mounted at /work (or here, with --local),
then ``dvc commit`` records it exactly as ``dvc repro`` would. A rerun with nothing changed finds
nothing stale and starts no container.

SIGINT or SIGTERM stops the running stage (``interrupt``), removes its partial outputs, and ends the run
with exit 130 or 143 and a run.json that names the signal and the stage; dvc.lock keeps what the
finished stages recorded.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path

from soil_contracts.errors import ContractError, Interrupted
from soil_contracts.git import git_branch
from soil_contracts.records import RegisteredVersion, RunRecord, StageRecord
from soilci.errors import ConfigError, DockerUnavailable, SoilCIError, StageFailed
from soilci.library.base import resolve_base
from soilci.pipeline import checks, dvc, remote
from soilci.pipeline.interrupt import InterruptGuard
from soilci.pipeline.lock import TreeLock
from soilci.pipeline.outcomes import GATES, exit_meaning, log_tail
from soilci.pipeline.ownership import hand_back
from soilci.pipeline.progress import Progress
from soilci.pipeline.register import REGISTERED_FILE, register_stage
from soilci.pipeline.runners import ContainerRunner, LocalRunner, written_tops
from soilci.pipeline.settings import check_settings
from soilci.pipeline.tracked import pull, settle_tracked_data
from soilci.revision import differences, named, tree_state


def new_run_dir(root: Path) -> Path:
    """``runs/<UTC timestamp>/``, created empty; its name is the run id."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    run_dir = root / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def run_pipeline(
    repo: Path,
    *,
    local: bool = False,
    base: str | None = None,
    push_outputs: bool = False,
    register: bool = False,
    branch: str | None = None,
    client=None,
) -> int:
    """Run the stale stages in order, then push and register if asked.

    Returns:
        0 when every stage passed, 1 when a gate stopped the run.

    Raises:
        StageFailed: a stage (or registration) crashed; carries its own exit code.
        DockerUnavailable, BuildError, ConfigError: no engine (3), an image did not build (4), bad input (2).
        Interrupted: SIGINT or SIGTERM stopped the run (exit 130 or 143); run.json says where.
        TreeBusy: another run holds the working tree (exit 3); nothing was written.
    """
    resolve_base(Path(repo), base)  # exit 2 for a --base that is no revision, before anything is written
    with InterruptGuard() as guard:
        return PipelineRun(Path(repo).resolve(), local=local, client=client, guard=guard).run(
            base=base, push_outputs=push_outputs, register=register, branch=branch)


class PipelineRun:
    """One ``soilci pipeline`` run and its record."""

    def __init__(self, root: Path, *, local: bool, client=None, guard: InterruptGuard | None = None) -> None:
        self.root = root
        self.local = local
        self.client = client
        self.guard = guard or InterruptGuard()  # not installed: signals keep their meaning
        self.step: str | None = None  # what runs now (a stage, pull, push, register): where a signal stops it
        self.touched: dvc.Stage | None = None  # the stage whose outputs are removed and not yet recorded again
        self.progress = Progress()
        self.started = time.monotonic()
        self.dvc = dvc.DvcRepo(root)  # one Repo for the run's DVC operations; closed as the run ends
        try:
            self.stages = dvc.load_stages(self.dvc)
            if local:
                LocalRunner.check_installed()  # exit 3 before anything is written: no `local` extra here
            check_settings(local=local)  # exit 2 before anything is written, for a value the run could not use
            self.lock = TreeLock(root)
            self.lock.acquire()  # before anything is written: a second run in this tree stops here (exit 3)
        except BaseException:
            self.dvc.close()
            raise
        try:
            self._check_inputs()
            self.run_dir = new_run_dir(root)
        except BaseException:
            self.lock.release()
            self.dvc.close()
            raise
        self.record = RunRecord(
            run_id=self.run_dir.name, mode="local" if local else "containers",
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            repo=str(root), stages=[StageRecord(name=s.name) for s in self.stages],
        )
        self.runner: ContainerRunner | LocalRunner | None = None

    def _check_inputs(self) -> None:
        """Refuse (exit 2, before anything is written) a bad params.yaml, undeclared or outside inputs, a library
        folder that is not a complete batch, outputs committed to git, and a file where an output's folder goes."""
        from soil_contracts.library import BASE_LISTING, incomplete_batches
        from soilci.library.verbs import load_spec
        from soilci.params import validate_params_file

        validate_params_file(self.root / "params.yaml")  # all stages' sections, before the first one runs
        spec = load_spec(self.root, None)
        checks.check_inputs(self.root, self.stages, spec.path)
        if problems := incomplete_batches(self.root, spec):  # prepare would refuse them too, after the pull
            raise ConfigError("; ".join(problems))
        checks.check_outputs_not_in_git(self.root, self.stages)
        # Besides the stages' outputs, the run writes its record and the base's library listing (_list_base).
        checks.check_output_folders(self.root, self.stages, "runs/<id>/run.json", BASE_LISTING)

    def run(self, *, base: str | None = None, push_outputs: bool, register: bool, branch: str | None) -> int:
        """The whole run (see ``run_pipeline``); an interrupt is recorded in run.json, then re-raised."""
        try:
            return self._run(base=base, push_outputs=push_outputs, register=register, branch=branch)
        except Interrupted as exc:
            self._interrupted(exc)
            raise
        finally:
            self.lock.release()
            self.dvc.close()

    def _interrupted(self, exc: Interrupted) -> None:
        """Record where the signal stopped the run; the stage it cut short leaves no partial outputs."""
        self.guard.pending = self.guard.pending or exc.signum  # later signals no longer cut this short
        self.guard.closing = True
        at = self.step
        rec = next((r for r in self.record.stages if r.name == at), None)
        if self.touched is not None:  # as before it ran: dvc.lock still records the earlier run, or nothing
            dvc.remove_outputs(self.root, self.touched)
        if rec is not None and rec.outcome == "not run":
            rec.outcome = "interrupted"
        if isinstance(self.runner, ContainerRunner):
            with contextlib.suppress(Exception):  # an engine gone meanwhile: the next run reaps them
                self.runner.remove_run_containers()  # one created just before the signal, not yet streamed
        self.record.interrupted_by = exc.signal_name
        self.finish(exc.exit_code, at)
        self.progress.info(f"interrupted by {exc.signal_name}{f' during {at}' if at else ''}: dvc.lock records "
                           f"only the stages that finished; run record {self.run_dir.relative_to(self.root)}/run.json")

    def _run(self, *, base: str | None, push_outputs: bool, register: bool, branch: str | None) -> int:
        self.guard.check()
        rel_run = self.run_dir.relative_to(self.root)
        self.progress.info(f"soilci pipeline: {len(self.stages)} stages ({self.record.mode}); logs in {rel_run}/")
        self._list_base(base)
        settled, pulled = settle_tracked_data(self.root, self.dvc, self.run_dir, self.progress)
        if pulled is not None:
            self.record.pull = pulled
        status = dvc.stage_changes(settled if settled is not None else dvc.repo_status(self.dvc))
        if status or register:  # only now is an engine needed (a missing one fails before any work)
            self.runner = self._runner()
            # A stage container a killed driver left behind still writes into the tree: remove it first.
            if isinstance(self.runner, ContainerRunner) and self.runner.reap(self.progress.info):
                status = dvc.changed_stages(self.dvc)
            if isinstance(self.runner, LocalRunner):  # how many stages may run: is a preload server worth it
                self.runner.stale = sum(stage.name in status for stage in self.stages)
        if status:
            if (code := self._run_stages(status)) != 0:
                return code
        else:
            for rec in self.record.stages:
                rec.outcome = "up to date"
            self.progress.info(f"all {len(self.stages)} stages up to date; nothing to run")
        if push_outputs:
            self.guard.check()
            self.step = "push"
            self._push()
            self._publish_results()
        if register:
            self.guard.check()
            self._register(branch or git_branch(self.root))
        self.guard.check()
        self.step = None
        self.finish(0)
        self.progress.info(f"done in {self.record.seconds:.1f}s")
        if note := checks.lock_note(self.root):
            self.progress.info(note)
        return 0

    def finish(self, code: int, stopped_at: str | None = None) -> None:
        """Write run.json; as root in someone else's tree, hand what the run wrote back to its owner."""
        self.record.exit_code, self.record.stopped_at = code, stopped_at
        # As the run ends: the pipeline's own writes (dvc.lock, outputs) are left out of the digest.
        self.record.commit, self.record.tree = tree_state(self.root)
        self.record.seconds = round(time.monotonic() - self.started, 2)
        self.record.images = dict(self.runner.images) if self.runner else {}
        self.record.save(self.run_dir / "run.json")
        hand_back(self.root, [self.root / "dvc.lock", self.root / ".dvc", self.root / "runs",
                              *written_tops(self.root, self.stages)])

    def _list_base(self, base: str | None) -> None:
        """Write the base revision's library listing, a dependency of prepare (the drift gate's candidate)."""
        from soilci.library.base import write_base_listing
        from soilci.library.verbs import load_spec

        listing = write_base_listing(self.root, base, load_spec(self.root, None))
        at = listing.commit[:12] if listing.commit else "not found: every batch is new"
        self.progress.info(f"base {listing.ref} ({at}): library batches: {len(listing.batches)}")

    def _runner(self) -> ContainerRunner | LocalRunner:
        if self.local:
            return LocalRunner(self.root)
        from soilci.images import docker_client

        try:
            return ContainerRunner(self.root, self.client or docker_client(), run_id=self.record.run_id)
        except DockerUnavailable as exc:
            self.finish(exc.exit_code)
            raise DockerUnavailable(f"{exc}; or run the stages without containers: soilci pipeline --local") \
                from exc

    def _run_stages(self, status: dict[str, list]) -> int:
        """Each stale stage in order; 1 when a gate stops the run, else 0. A crash raises StageFailed."""
        current: dict[str, list] | None = status  # what DVC said, until something writes to the tree
        if dvc.outputs_missing(status):
            self.step = "pull"
            self.record.pull = pull(self.dvc, self.run_dir, self.progress)
            current = None

        for stage, rec in zip(self.stages, self.record.stages, strict=True):
            self.step = stage.name
            self.guard.check()  # a signal held during the last step ends the run here, before this stage
            stale = stage.name in current if current is not None else dvc.is_stale(self.dvc, stage.name)
            if not stale:
                rec.outcome = "up to date"
                self.progress.done(stage.name, "up to date", style="dim")
                continue
            current = None  # from here on this stage writes: ask DVC afresh for the next ones
            self.touched = stage
            dvc.remove_outputs(self.root, stage)  # as dvc repro does: no output of an earlier run survives
            if dvc.restore_from_run_cache(self.dvc, stage.name):
                self.touched = None
                rec.outcome = "restored"
                self.progress.done(stage.name, "restored from DVC's run-cache")
                continue
            log = self.run_dir / f"{stage.name}.log"
            rec.log = str(log.relative_to(self.root))
            t0 = time.monotonic()
            code = self._execute(stage, log, rec)
            rec.seconds, rec.exit_code = round(time.monotonic() - t0, 2), code
            if code == 0:
                try:  # exit 0 without a declared output: DVC's commit would crash with no record
                    checks.check_written(self.root, stage, log)
                except StageFailed as exc:
                    rec.outcome = "failed"
                    self.progress.done(stage.name, "exited 0 without its outputs", style="red", seconds=rec.seconds)
                    self.finish(exc.exit_code, stage.name)
                    raise
                dvc.commit_stage(self.dvc, stage.name)
                self.touched = None
                rec.outcome = "ran"
                built = " (image built)" if self.runner.built.get(stage.service) else ""
                self.progress.done(stage.name, f"ran {self._where(stage)}{built}", seconds=rec.seconds)
                continue
            rec.outcome = "failed"
            if code == 1 and stage.name in GATES:
                self.progress.done(stage.name, f"{GATES[stage.name]} failed (exit 1); stopping", style="red",
                                   seconds=rec.seconds)
                self.progress.info(log_tail(log))
                self.finish(1, stage.name)
                return 1
            self.progress.done(stage.name, exit_meaning(code), style="red", seconds=rec.seconds)
            self._crashed(stage, code, log)
        return 0

    def _where(self, stage: dvc.Stage) -> str:
        return "here" if self.local else f"in soil-{stage.service}"

    def _execute(self, stage: dvc.Stage, log: Path, rec: StageRecord | None = None) -> int:
        """Run one command through the runner; an image or engine failure ends the run (raises)."""
        try:
            with self.progress.step(f"{stage.name} ({self._where(stage)})") as on_line, self.guard.interruptible():
                if isinstance(self.runner, ContainerRunner):
                    self.runner.on_build_line = on_line
                    image = self.runner.image(stage.service)
                    if rec is not None:
                        rec.image = image
                return self.runner.run(stage, log, on_line)
        except SoilCIError as exc:  # the image did not build, or the engine could not run it
            if rec is not None:
                rec.outcome = "failed"
            self.finish(exc.exit_code, stage.name)
            raise

    def _crashed(self, stage: dvc.Stage, code: int, log: Path) -> None:
        self.finish(code, stage.name)
        tail = log_tail(log)
        phrase = exit_meaning(code, with_code=False)
        raise StageFailed(
            stage.name, code,
            f"stage {stage.name!r} failed with exit code {code}{'' if phrase == 'failed' else f': it {phrase}'} "
            f"({stage.cmd}); log: {log}"
            + (f"\n--- last lines ---\n{tail}" if tail else ""),
        )

    def _push(self) -> None:
        t0 = time.monotonic()
        with self.progress.step("push"):
            remote.push(self.dvc, self.run_dir / "push.log")
        self.progress.done("push", "outputs pushed to the DVC remote", seconds=time.monotonic() - t0)

    def _publish_results(self) -> None:
        """The run's results, keyed by HEAD, into the DVC remote: what a PR's report compares with."""
        from soilci.report.baseline import clean_commit, collect, publish

        commit = clean_commit(self.root)
        if commit is None:
            self.progress.info(f"results not published: the tree differs from HEAD ({named(differences(self.root))})")
            return
        if not (self.root / "metrics" / "metrics.json").is_file():
            self.progress.info("results not published: no metrics/metrics.json")
            return
        where = publish(self.root, collect(self.root, commit))
        self.progress.info(f"results of {commit[:12]} published for reports: {where}")

    def _register(self, branch: str | None) -> RegisteredVersion:
        """``soil-trainer register`` through the stages' runner; its record is runs/registered.json."""
        stage = register_stage(branch)
        self.step = stage.name
        out = self.root / REGISTERED_FILE
        out.unlink(missing_ok=True)  # a failed registration leaves no earlier version behind
        log = self.run_dir / f"{stage.name}.log"
        t0 = time.monotonic()
        code = self._execute(stage, log)
        if code != 0:
            self.progress.done(stage.name, exit_meaning(code), style="red",
                               seconds=time.monotonic() - t0)
            self._crashed(stage, code, log)
        try:
            registered = RegisteredVersion.load(out)
        except ContractError as exc:
            self.finish(exc.exit_code, stage.name)
            raise
        self.progress.done(stage.name, f"{registered.name} version {registered.version} has alias "
                                       f"{registered.alias} ({REGISTERED_FILE})", seconds=time.monotonic() - t0)
        return registered
