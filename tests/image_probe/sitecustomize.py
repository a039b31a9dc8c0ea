"""Import probe for tests/test_image_contents.py, put on PYTHONPATH inside an image under test.

When ``SOILCI_IMPORT_PROBE_DIR`` is set, every Python process writes one report there at exit: its
argv, the file of every module it imported, and every shared library it had mapped
(``/proc/self/maps``). ``owners.py`` maps the files to the distributions that installed them. Processes
that end with ``os._exit`` (multiprocessing and forked workers) or re-raise a caught signal once they
have shut down (uvicorn) report first; a killed process reports nothing, so the test counts the reports.
"""

import atexit
import os
import signal
import sys

_reported = []
_exit = os._exit
_raise_signal = signal.raise_signal


def _report() -> None:
    out = os.environ.get("SOILCI_IMPORT_PROBE_DIR")
    if not out or _reported == [os.getpid()]:
        return
    _reported[:] = [os.getpid()]
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            files.add(path)
        files.update(getattr(module, "__path__", None) or [])  # namespace packages have no __file__
    try:
        with open("/proc/self/maps") as maps:
            files.update(line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line)
    except OSError:
        pass
    name = os.path.join(out, f"{os.getpid()}-{os.urandom(4).hex()}.txt")
    with open(name, "w") as fh:
        fh.write("\n".join(["argv " + " ".join(sys.argv), *sorted(f for f in files if f.startswith("/"))]) + "\n")


def _report_and_exit(code: int) -> None:
    _report()
    _exit(code)


def _report_and_raise(signum: int) -> None:
    _report()
    _raise_signal(signum)


atexit.register(_report)
os._exit = _report_and_exit
signal.raise_signal = _report_and_raise
