"""soilci: the operator CLI. Each section's arguments live in its subpackage's ``cli.py``."""

from __future__ import annotations

import argparse
import importlib
import sys

from soil_contracts.cli import run_main

# Subpackages that contribute verbs, in the order --help lists them.
SECTIONS = ("soilci.library.cli", "soilci.pipeline.cli", "soilci.report.cli", "soilci.delivery.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soilci", description="Continuous ML for soil-spectroscopy models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SECTIONS:
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; exit codes follow ``soil_contracts.errors.ExitCode``."""
    commands: dict = {}
    for name in SECTIONS:
        commands.update(importlib.import_module(name).COMMANDS)
    return run_main("soilci", build_parser(), commands, argv)


if __name__ == "__main__":
    sys.exit(main())
