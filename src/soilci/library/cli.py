"""Arguments of ``soilci library`` (import, list, base, accept, demo)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from soil_contracts.library import BATCH_ID_PATTERN


def batch_id(value: str) -> str:
    """``value`` as a batch id (it names the batch's folder); argparse's error (exit 2) for anything else."""
    if not re.fullmatch(BATCH_ID_PATTERN, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a batch id: 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit "
            "(it names the batch's folder under library/batches/)")
    return value


def add_parsers(sub) -> None:
    lib = sub.add_parser("library", help="the spectral library: import a batch, list batches, build the demo")
    verbs = lib.add_subparsers(dest="library_command", required=True)

    p = verbs.add_parser("import", help="turn a spectra file into a library batch (canonical axis, grid, scale)")
    p.add_argument("source", help="a .csv/.parquet file, or limesoda:<dataset> (e.g. limesoda:SSP.460)")
    p.add_argument("--batch", required=True, metavar="ID", type=batch_id,
                   help="batch id = folder name (a-z, 0-9, . _ -)")
    p.add_argument("--instrument", required=True, help="spectrometer (free text)")
    p.add_argument("--lab", required=True, help="laboratory (free text)")
    p.add_argument("--date", required=True, help="measurement date or period (free text)")
    p.add_argument("--description", default="", help="anything else a reader should know")
    p.add_argument("--axis", choices=["wavelength_nm", "wavenumber_cm-1"], default=None,
                   help="x axis of numeric band headers (350, 351, ...); OSSL/LimeSoDa names say it themselves")
    p.add_argument("--scale", choices=["reflectance_fraction", "reflectance_percent", "absorbance"], default=None,
                   help="y axis of the file's spectra (OSSL *_abs columns say absorbance themselves)")
    p.add_argument("--target", action="append", default=[], metavar="COLUMN=UNIT", required=True,
                   help="a soil property column and its unit, e.g. SOC_target=%% (repeat for each)")
    p.add_argument("--id-column", default="sample_id", help="the sample id column (default: sample_id)")
    p.add_argument("--folds", default=None, help="limesoda: sources only: comma-separated LimeSoDa folds")
    p.add_argument("--benchmark", action="store_true",
                   help="write the fixed benchmark set (library/benchmark) instead of a batch")
    p.add_argument("--replace", action="store_true", help="replace an existing batch (shown in the PR report)")
    p.add_argument("--no-dvc", action="store_true", help="do not 'dvc add' the spectra file")
    _common(p)

    p = verbs.add_parser("list", help="the library's batches as a table")
    _common(p)

    p = verbs.add_parser("base", help="write .soilci/base.json: the library at a base revision (for dvc repro)")
    p.add_argument("--base", default=None,
                   help="git revision the branch is compared with (default: origin/main, else main, else HEAD)")
    _common(p)

    p = verbs.add_parser(
        "accept", help="record a lead's acceptance of one batch's drift in its batch.yaml (reason, who)",
        description="Write drift_acceptance {reason, by, content_sha256} into the batch's batch.yaml. The "
                    "drift gate then warns instead of failing when only accepted batches drift. The "
                    "acceptance holds for the batch content it names: changed data needs a new acceptance.",
        epilog="exit codes: 0 written; 2 no such batch, spectra missing or changed, empty --reason/--by.")
    p.add_argument("batch", metavar="ID", type=batch_id, help="the batch id (folder name under library/batches/)")
    p.add_argument("--reason", help="why the drift is right (e.g. 'new detector; offset checked against the "
                                    "lab's reference soils')")
    p.add_argument("--by", help="who accepts it (name or e-mail)")
    p.add_argument("--withdraw", action="store_true", help="remove the batch's acceptance instead")
    _common(p)

    p = verbs.add_parser("demo", help="build the demo library from LimeSoDa SSP.460 (the README's main job)")
    p.add_argument("--no-dvc", action="store_true", help="do not 'dvc add' the spectra files")
    _common(p)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--params", type=Path, default=None, help="params file (default: <repo>/params.yaml)")


def run_library(args: argparse.Namespace) -> int:
    from soilci.library import verbs

    return {"import": verbs.run_import, "list": verbs.run_list, "base": verbs.run_base,
            "demo": verbs.run_demo, "accept": verbs.run_accept}[args.library_command](args)


COMMANDS = {"library": run_library}
