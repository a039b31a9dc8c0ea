"""Whether an installed distribution's extra is complete: what ``soilci pipeline --local`` needs here.

The operator image installs soilci without its ``local`` extra (its stages run in their service images);
``--local`` there must stop with a clear error naming what is missing, not an ImportError mid-stage.
"""

from __future__ import annotations

import re

LOCAL_EXTRA = "local"  # soilci's extra with everything the stage commands import (pyproject.toml)
# A Requires-Dist line's name and extras (PEP 508): "soil-drift[files,plot]>=0.1 ; extra == 'local'".
REQUIREMENT_HEAD = re.compile(r"\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?")


def missing_requirements(dist: str = "soilci", extra: str = LOCAL_EXTRA) -> list[str]:
    """Distributions that ``dist``'s ``extra`` brings, directly or through their requirements, and that are
    not installed.

    Walks the installed metadata (``Requires-Dist``) breadth first from the requirements only the extra adds,
    markers evaluated for this interpreter and the extras asked for; versions are not compared, only presence.
    Returns ``"name (needed by parent)"`` strings, nearest first; empty when everything is installed.
    """
    from collections import deque
    from importlib import metadata

    from packaging.markers import Marker
    from packaging.utils import canonicalize_name

    missing: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = deque([(dist, frozenset({extra}), "")])
    while todo:
        name, extras, parent = todo.popleft()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:  # found by its dist-info folder's name; only the distributions on the walk parse their METADATA
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            missing.setdefault(key[0], f"{key[0]} (needed by {parent})" if parent else key[0])
            continue
        for text in requires:
            # Name, extras and marker only: packaging's Requirement parses every version specifier too, most
            # of the cost here (measured), and versions are not compared.
            spec, _, marker_text = text.partition(";")
            head = REQUIREMENT_HEAD.match(spec)
            if head is None:
                continue
            marker = Marker(marker_text) if marker_text.strip() else None
            if not parent:  # the top: what the extra adds, not what the distribution needs anyway
                wanted = marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate(
                    {"extra": ""})
            else:
                wanted = marker is None or any(marker.evaluate({"extra": e}) for e in extras | {""})
            if wanted:
                extras_asked = frozenset(e.strip() for e in (head["extras"] or "").split(",") if e.strip())
                todo.append((head["name"], extras_asked, key[0]))
    return list(missing.values())
