"""The staging overlay: which slot is live, what each slot runs, and what kustomize renders from it."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from soil_contracts.files import write_text_atomic
from soilci.delivery.refs import ImageRef
from soilci.delivery.release import Release, ReleaseAnnotations
from soilci.errors import ConfigError

SLOTS = ("blue", "green")
DEFAULT_OVERLAY = "deploy/kustomize/overlays/staging"
KUSTOMIZATION = "kustomization.yaml"
LIVE_FILE = "live.yaml"
RELEASE_FILE = "release.yaml"
LIVE_SERVICE = "model-api"
PREVIEW_SERVICE = "model-api-preview"
CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def other(slot: str) -> str:
    """The slot that is not ``slot``."""
    return SLOTS[1 - SLOTS.index(slot)]


def placeholder(slot: str) -> str:
    """The image name the slot's Deployment carries until ``images:`` replaces it."""
    return f"model-api-{slot}"


def _yaml() -> YAML:
    """A round-trip YAML that keeps comments, quotes and this repo's indentation."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


def load_yaml(text: str, where: str | Path) -> list[Any]:
    """The documents of a manifests file, empty ones dropped.

    Raises:
        ConfigError: not YAML (a merge left conflict markers, say), naming ``where`` and the line.
    """
    try:
        return [doc for doc in _yaml().load_all(text) if doc is not None]
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        hint = (
            "it holds git conflict markers: resolve the merge"
            if CONFLICT_MARKER.search(text)
            else "fix the file in the manifests repo"
        )
        raise ConfigError(f"{where}: not valid YAML{at} ({problem}); {hint}") from exc


def service_selectors(docs: list[Any]) -> dict[str, Any]:
    """``{Service name: the slot its selector names}`` in live.yaml's documents, unchecked."""
    found = {}
    for doc in docs:
        if isinstance(doc, dict):
            spec = doc.get("spec") or {}
            found[(doc.get("metadata") or {}).get("name")] = (spec.get("selector") or {}).get("slot")
    return found


def _dump(rt: YAML, docs: list, path: Path) -> None:
    buf = io.StringIO()
    if len(docs) == 1:
        rt.dump(docs[0], buf)
    else:
        rt.dump_all(docs, buf)
    write_text_atomic(path, buf.getvalue())


class StagingOverlay:
    """The staging overlay of a manifests checkout: which slot is live, what each slot runs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not (self.root / KUSTOMIZATION).is_file():
            raise ConfigError(f"{self.root}: no {KUSTOMIZATION} (is --overlay right?)")

    def _read(self, rel: str, why: str = "") -> list[Any]:
        path = self.root / rel
        if not path.is_file():
            raise ConfigError(f"{path}: missing{why}")
        return load_yaml(path.read_text(), path)

    # -- live slot ---------------------------------------------------------------------------
    def selectors(self) -> dict[str, str]:
        """``{service name: slot}`` as live.yaml sets them; ConfigError unless live and preview differ."""
        path = self.root / LIVE_FILE
        found = service_selectors(self._read(LIVE_FILE, "; it holds the live Service's selector"))
        for service in (LIVE_SERVICE, PREVIEW_SERVICE):
            if found.get(service) not in SLOTS:
                raise ConfigError(
                    f"{path}: Service {service} must select slot blue or green, got {found.get(service)!r}"
                )
        if found[LIVE_SERVICE] == found[PREVIEW_SERVICE]:
            raise ConfigError(
                f"{path}: {LIVE_SERVICE} and {PREVIEW_SERVICE} both select {found[LIVE_SERVICE]}"
            )
        return found

    def live_slot(self) -> str:
        return self.selectors()[LIVE_SERVICE]

    def set_live(self, slot: str) -> None:
        """Point the live Service at ``slot`` and the preview Service at the other one."""
        if slot not in SLOTS:
            raise ConfigError(f"unknown slot {slot!r}; expected blue or green")
        self.selectors()  # both Services exist and select a slot
        docs = self._read(LIVE_FILE)
        wanted = {LIVE_SERVICE: slot, PREVIEW_SERVICE: other(slot)}
        for doc in docs:
            name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
            if name in wanted:
                doc["spec"]["selector"]["slot"] = wanted[name]
        _dump(_yaml(), docs, self.root / LIVE_FILE)

    # -- releases ----------------------------------------------------------------------------
    def _kustomization(self) -> dict:
        docs = self._read(KUSTOMIZATION)
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise ConfigError(f"{self.root / KUSTOMIZATION}: expected one YAML mapping")
        return docs[0]

    @staticmethod
    def _image_entry(kust: dict, slot: str) -> dict | None:
        for entry in kust.get("images") or []:
            if isinstance(entry, dict) and entry.get("name") == placeholder(slot):
                return entry
        return None

    def annotations(self, slot: str) -> ReleaseAnnotations:
        """The model annotations of ``<slot>/release.yaml`` (all None when the file is absent)."""
        path = self.root / slot / RELEASE_FILE
        if not path.is_file():
            return ReleaseAnnotations()
        docs = self._read(f"{slot}/{RELEASE_FILE}")
        doc = docs[0] if docs and isinstance(docs[0], dict) else {}
        notes = (doc.get("metadata") or {}).get("annotations") or {}
        return ReleaseAnnotations.from_annotations(notes, where=str(path))

    def release(self, slot: str) -> Release:
        """The image and model version the manifests pin for ``slot``."""
        entry = self._image_entry(self._kustomization(), slot) or {}
        image = None
        if entry.get("newName"):
            image = str(ImageRef(entry["newName"], entry.get("newTag"), entry.get("digest")))
        notes = self.annotations(slot)
        return Release(
            slot=slot,
            image=image,
            digest=entry.get("digest"),
            tag=entry.get("newTag"),
            model_name=notes.model_name,
            model_version=notes.model_version,
            git_revision=notes.git_revision,
        )

    def set_release(self, slot: str, image: ImageRef, notes: ReleaseAnnotations) -> None:
        """Pin ``slot`` to ``image`` (as ``kustomize edit set image``) and record the model it carries."""
        kust = self._kustomization()
        images = kust.get("images")
        if images is None:
            kust["images"] = images = []
        entry = self._image_entry(kust, slot)
        if entry is None:
            images.append({"name": placeholder(slot)})
            images.sort(key=lambda e: e.get("name", ""))
            entry = self._image_entry(kust, slot)
        # kustomize edit set image NAME=REF replaces the entry: fields the new ref lacks are dropped.
        entry["newName"] = image.name
        for key, value in (("newTag", image.tag), ("digest", image.digest)):
            if value:
                entry[key] = value
            elif key in entry:
                del entry[key]
        _dump(_yaml(), [kust], self.root / KUSTOMIZATION)
        write_text_atomic(self.root / slot / RELEASE_FILE, notes.release_file(slot, placeholder(slot)))

    def render(self) -> list[dict]:
        """The objects Argo CD would apply: the overlay built by kustomize."""
        return render(self.root)


def kustomize_command(path: Path) -> list[str]:
    """``kustomize build`` if installed, else ``kubectl kustomize`` (which embeds kustomize)."""
    explicit = os.environ.get("SOILCI_KUSTOMIZE")
    if explicit:
        return [*explicit.split(), str(path)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(path)]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(path)]
    raise ConfigError("neither kustomize nor kubectl is on PATH; install one to render the overlay")


def render(path: Path) -> list[dict]:
    """Render a kustomization directory into its objects. Raises ConfigError with kustomize's message."""
    proc = subprocess.run(kustomize_command(path), check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError(f"{path}: kustomize failed: {proc.stderr.strip()[-2000:]}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
