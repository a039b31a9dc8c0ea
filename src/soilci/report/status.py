"""What the verdict does to the CI check: its exit code, a workflow annotation and the job summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from soil_contracts.errors import ExitCode
from soilci.report.verdict import BLOCK, READY, Verdict


def verdict_exit_code(verdict: Verdict, *, exit_zero: bool = False) -> int:
    """1 (``ExitCode.VERDICT``) for 🔴 Do not merge unless ``exit_zero``; 0 otherwise."""
    return ExitCode.VERDICT if verdict.level == BLOCK and not exit_zero else ExitCode.OK


def _escape(text: str, *, prop: bool = False) -> str:
    """GitHub Actions workflow-command escaping (``%``, CR, LF; also ``:`` and ``,`` in a property)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def annotate(kind: str, title: str, message: str, *, stream=None, env: dict[str, str] | None = None) -> None:
    """Print one line that flags ``message`` (``kind`` warning or error) to ``stream`` (stdout).

    Under GitHub Actions (``GITHUB_ACTIONS=true``) it is the workflow command ``::<kind> title=<title>::<message>``,
    escaped as the runner reads it, which shows on the run's page; elsewhere the plain ``<kind>: <title>: <message>``.
    """
    env = os.environ if env is None else env
    stream = sys.stdout if stream is None else stream
    if env.get("GITHUB_ACTIONS") == "true":
        print(f"::{kind} title={_escape(title, prop=True)}::{_escape(message)}", file=stream)
    else:
        print(f"{kind}: {title}: {message}", file=stream)


def announce(verdict: Verdict, headline: str, *, stream=None, env: dict[str, str] | None = None) -> None:
    """Make a verdict other than 🟢 visible in CI without failing the check.

    Prints ``annotate``'s line ``<verdict>: <headline>: <reason>`` (🔴 as an error, else a warning), and
    appends the verdict line to ``$GITHUB_STEP_SUMMARY`` when that variable is set.
    """
    env = os.environ if env is None else env
    line = f"{verdict.icon} {verdict.title}: {headline}"
    if verdict.level != READY:
        kind = "error" if verdict.level == BLOCK else "warning"
        annotate(kind, verdict.title, f"{headline}: {verdict.reason}", stream=stream, env=env)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as fh:
            fh.write(f"### {line}\n\n{verdict.reason[0].upper()}{verdict.reason[1:]}.\n\n")
