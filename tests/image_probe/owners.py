"""Run inside an image: which installed distributions own the files the probe reports name.

Usage: python owners.py REPORT_DIR; prints JSON {"installed": [...], "used": [...], "reports": [argv, ...]}
with distribution names normalised (PEP 503). A file counts for the distribution whose RECORD lists it;
a package directory (a namespace package's __path__) for every distribution with files under it.
"""

import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(report_dir: str) -> None:
    owner: dict[str, str] = {}
    dirs: dict[str, set[str]] = {}
    installed = set()
    for dist in metadata.distributions():
        name = normalise(dist.metadata["Name"])
        installed.add(name)
        for file in dist.files or []:
            path = os.path.realpath(dist.locate_file(file))
            owner[path] = name
            parent = os.path.dirname(path)
            dirs.setdefault(parent, set()).add(name)
    used, argvs = set(), []
    for report in sorted(Path(report_dir).glob("*.txt")):
        lines = report.read_text().splitlines()
        argvs.append(lines[0].removeprefix("argv "))
        for line in lines[1:]:
            path = os.path.realpath(line)
            if path in owner:
                used.add(owner[path])
            elif path in dirs:
                used.update(dirs[path])
    print(json.dumps({"installed": sorted(installed), "used": sorted(used), "reports": argvs}))


if __name__ == "__main__":
    main(sys.argv[1])
