"""What an image installs against what its Python processes imported (the import probe's reports).

``tests/image_probe/sitecustomize.py``, on PYTHONPATH in a container, makes every Python process write
the files of the modules it imported at exit; ``tests/image_probe/owners.py``, run in the same image,
maps them to the distributions that installed them. test_image_contents.py probes the service images;
the compose stack test probes compose's ``soilci`` and ``soil-mlflow`` images in the stack it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import REPO_ROOT

PROBE = REPO_ROOT / "tests" / "image_probe"
LABEL = {"org.soilci.test": "image-contents"}

HTTP_REMOTE = "DVC's http(s) remote (dvc-http) pulls with aiohttp; the test's remote is a local folder"
GIT_BACKENDS = ("scmrepo's fallback git backends: a DVC call dulwich does not implement goes to pygit2, then "
                "GitPython; without them that call would fail with an ImportError")
# Installed but imported by none of the entry points below; each one reviewed.
ALLOWED: dict[str, dict[str, str]] = {
    "drift": {
        "contourpy": "matplotlib's required dependency, imported only to draw contours; the figure has none",
    },
    "trainer": {},
    "model-api": {},
    "soilci": {
        "aiohappyeyeballs": HTTP_REMOTE,
        "aiohttp": HTTP_REMOTE,
        "aiohttp-retry": HTTP_REMOTE,
        "aiosignal": HTTP_REMOTE,
        "frozenlist": HTTP_REMOTE,
        "multidict": HTTP_REMOTE,
        "propcache": HTTP_REMOTE,
        "yarl": HTTP_REMOTE,
        "gitdb": GIT_BACKENDS,
        "gitpython": GIT_BACKENDS,
        "pygit2": GIT_BACKENDS,
        "smmap": GIT_BACKENDS,
    },
    "mlflow": {},
}



def image_usage(client, image: str, reports: Path) -> dict:
    """{"installed": [...], "used": [...], "reports": [argv, ...]} for the reports in ``reports``, names
    normalised (PEP 503), read in ``image`` itself (its installed distributions)."""
    out = client.containers.run(
        image, ["/probe/owners.py", "/probe-reports"], entrypoint="python", remove=True,
        volumes={str(PROBE): {"bind": "/probe", "mode": "ro"}, str(reports): {"bind": "/probe-reports", "mode": "ro"}},
        labels=LABEL,
    )
    return json.loads(out)


def assert_installs_only_what_it_imports(client, image: str, service: str, usage: dict, must_use: set[str]) -> None:
    """Assert ``image`` installs nothing its probed processes did not import (or ALLOWED names).

    ``must_use``: distributions the runs must have imported (the probe works, the service's own code ran).
    """
    assert must_use <= set(usage["used"]), must_use - set(usage["used"])
    installed, used, allowed = set(usage["installed"]), set(usage["used"]), set(ALLOWED[service])
    unused = installed - used - allowed
    name = service if service == "soilci" else f"soil-{service}"
    assert not unused, (f"{name} installs distributions none of its entry points imports: "
                        f"{sorted(unused)}; leave them out (extras, --no-install-package) or allow them with a reason")
    stale = allowed - installed
    assert not stale, f"ALLOWED[{service!r}] names distributions the image no longer installs: {sorted(stale)}"
    size = client.images.get(image).attrs["Size"]
    print(f"\n{name}: {len(installed)} distributions, {len(used)} imported; image {size / 1e6:.0f} MB")
