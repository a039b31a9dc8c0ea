"""soilci status: which slot is live, what each slot runs, and what Argo CD will sync."""

from __future__ import annotations

import json

from soil_contracts.redact import redact_url
from soilci.delivery.manifests_repo import clone
from soilci.delivery.overlay import DEFAULT_OVERLAY, SLOTS, other
from soilci.delivery.release import UNRELEASED


def status(url: str, *, branch: str | None = None, overlay: str = DEFAULT_OVERLAY) -> dict:
    """The report ``soilci status --json`` prints.

    Returns:
        ``manifests_repo`` (redacted), ``branch``, ``revision``, ``subject``, ``overlay``, ``live``,
        ``preview``, ``slots`` (slot -> its Release as a dict plus ``role``: live or preview) and
        ``objects`` (kind, name, namespace of each rendered object).
    """
    with clone(url, branch=branch, overlay=overlay) as checkout:
        ov = checkout.overlay
        live = ov.live_slot()
        slots = {}
        for slot in SLOTS:
            slots[slot] = {**ov.release(slot).as_dict(), "role": "live" if slot == live else "preview"}
        objects = [
            {
                "kind": o.get("kind"),
                "name": o.get("metadata", {}).get("name"),
                "namespace": o.get("metadata", {}).get("namespace"),
            }
            for o in ov.render()
        ]
        return {
            "manifests_repo": redact_url(url),
            "branch": checkout.branch,
            "revision": checkout.head(),
            "subject": checkout.git("log", "-1", "--format=%s").stdout.strip(),
            "overlay": overlay,
            "live": live,
            "preview": other(live),
            "slots": slots,
            "objects": objects,
        }


def format_status(report: dict) -> str:
    """A plain-text table of ``status``'s report."""
    lines = [
        (
            f"manifests  {report['manifests_repo']} "
            f"({report['branch']} @ {report['revision'][:12]}: {report['subject']})"
        ),
        f"overlay    {report['overlay']}",
        "",
        f"{'slot':<7} {'role':<8} {'model':<18} {'git revision':<14} image",
    ]
    for slot in SLOTS:
        rel = report["slots"][slot]
        model = (
            f"{rel['model_name'] or '-'} v{rel['model_version']}"
            if rel["model_version"] not in (None, UNRELEASED)
            else "(none)"
        )
        rev = (rel["git_revision"] or "-")[:12]
        lines.append(f"{slot:<7} {rel['role']:<8} {model:<18} {rev:<14} {rel['image'] or '-'}")
    lines += ["", f"Argo CD syncs {len(report['objects'])} objects:"]
    lines += [
        f"  {o['kind']:<22} {(o['namespace'] + '/') if o['namespace'] else ''}{o['name']}"
        for o in report["objects"]
    ]
    return "\n".join(lines)


def run(args) -> int:
    """``soilci status``: a table, or JSON with ``--json``."""
    report = status(args.manifests_repo, branch=args.branch, overlay=args.overlay)
    print(json.dumps(report, indent=2) if args.json else format_status(report))
    return 0
