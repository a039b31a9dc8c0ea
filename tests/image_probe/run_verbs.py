"""Run several verbs of one console script in this one interpreter, for tests/test_image_contents.py.

``python /probe/run_verbs.py PROGRAM JSON``: JSON lists ``[expected exit code, [arg, ...]]`` pairs. The
program's entry point (``soil-drift`` -> ``soil_drift.cli:main``) is called once per argument list, in
order, so the import probe reports what all of them imported from one interpreter start. Each verb still
runs in a process of its own where the test runs the pipeline (soilci's stage containers). Exits 1 at the
first verb whose exit code is not the expected one.
"""

import json
import sys
from importlib.metadata import entry_points


def main() -> int:
    """Call the entry point for each argument list; 0 when every exit code was the expected one."""
    program, runs = sys.argv[1], json.loads(sys.argv[2])
    (entry,) = entry_points(group="console_scripts", name=program)
    verb_main = entry.load()
    for expected, args in runs:
        code = verb_main(args)
        print(f"run_verbs: {program} {' '.join(args)}: exit {code} (expected {expected})", flush=True)
        if code != expected:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
