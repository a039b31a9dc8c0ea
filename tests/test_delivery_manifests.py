"""Kustomize overlays and Argo CD objects: they render, validate against schemas, keep blue/green sound."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from soilci.delivery.gitops import (
    COLOURS,
    LIVE_SERVICE,
    PREVIEW_SERVICE,
    ImageRef,
    StagingOverlay,
    other,
    render,
)

ROOT = Path(__file__).resolve().parents[1]
KUSTOMIZE = ROOT / "deploy" / "kustomize"
OVERLAYS = {
    "base": KUSTOMIZE / "base",
    "staging": KUSTOMIZE / "overlays" / "staging",
    "staging/blue": KUSTOMIZE / "overlays" / "staging" / "blue",
    "staging/green": KUSTOMIZE / "overlays" / "staging" / "green",
}
# The cluster versions the objects must be valid for: kubectl's here, and the newest schemas shipped.
KUBE_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())

# The fields of Argo CD's Application and AppProject CRDs (manifests/crds/*-crd.yaml, openAPIV3Schema)
# that soil-ci sets, with the CRDs' required lists; unknown fields are errors here, as typos would be.
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_GROUP_KIND = {
    "type": "object",
    "required": ["group", "kind"],
    "additionalProperties": False,
    "properties": {"group": {"type": "string"}, "kind": {"type": "string"}},
}
_DESTINATION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "server": {"type": "string"}},
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "finalizers": _STR_LIST,
        "labels": {"type": "object"},
    },
}
ARGOCD_SCHEMAS = {
    "Application": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "argoproj.io/v1alpha1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["destination", "project"],
                "additionalProperties": False,
                "properties": {
                    "project": {"type": "string"},
                    "destination": _DESTINATION,
                    "revisionHistoryLimit": {"type": "integer"},
                    "source": {
                        "type": "object",
                        "required": ["repoURL"],
                        "additionalProperties": False,
                        "properties": {
                            "repoURL": {"type": "string"},
                            "path": {"type": "string"},
                            "targetRevision": {"type": "string"},
                        },
                    },
                    "syncPolicy": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "automated": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "prune": {"type": "boolean"},
                                    "selfHeal": {"type": "boolean"},
                                    "allowEmpty": {"type": "boolean"},
                                    "enabled": {"type": "boolean"},
                                },
                            },
                            "syncOptions": _STR_LIST,
                            "managedNamespaceMetadata": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "annotations": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                            "retry": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "limit": {"type": "integer"},
                                    "refresh": {"type": "boolean"},
                                    "backoff": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "duration": {"type": "string"},
                                            "factor": {"type": "integer"},
                                            "maxDuration": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "AppProject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "argoproj.io/v1alpha1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string"},
                    "sourceRepos": _STR_LIST,
                    "destinations": {"type": "array", "items": _DESTINATION},
                    "clusterResourceWhitelist": {"type": "array", "items": _GROUP_KIND},
                    "namespaceResourceWhitelist": {"type": "array", "items": _GROUP_KIND},
                    "orphanedResources": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"warn": {"type": "boolean"}},
                    },
                },
            },
        },
    },
}


def _by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pods_selected(objects: list[dict], selector: dict) -> list[str]:
    """Names of the Deployments whose pods ``selector`` matches."""
    return [
        name
        for name, dep in _by_kind(objects, "Deployment").items()
        if _selects(selector, dep["spec"]["template"]["metadata"]["labels"])
    ]


@pytest.fixture(scope="module")
def staging() -> list[dict]:
    return render(OVERLAYS["staging"])


@pytest.fixture
def overlay_copy(tmp_path) -> StagingOverlay:
    shutil.copytree(KUSTOMIZE, tmp_path / "kustomize")
    return StagingOverlay(tmp_path / "kustomize" / "overlays" / "staging")


def assert_blue_green_invariants(objects: list[dict]) -> str:
    """The live Service selects exactly one colour's Deployment, the preview Service the other one."""
    services = _by_kind(objects, "Service")
    assert set(services) == {LIVE_SERVICE, PREVIEW_SERVICE}
    live_slot = services[LIVE_SERVICE]["spec"]["selector"].get("slot")
    assert live_slot in COLOURS
    assert _pods_selected(objects, services[LIVE_SERVICE]["spec"]["selector"]) == [f"model-api-{live_slot}"]
    assert _pods_selected(objects, services[PREVIEW_SERVICE]["spec"]["selector"]) == [
        f"model-api-{other(live_slot)}"
    ]
    for colour in COLOURS:
        dep = _by_kind(objects, "Deployment")[f"model-api-{colour}"]
        own = dep["spec"]["selector"]["matchLabels"]
        assert own["slot"] == colour
        # A Deployment's selector picks its own pods and never the other colour's.
        assert _pods_selected(objects, own) == [f"model-api-{colour}"]
        pdb = _by_kind(objects, "PodDisruptionBudget")[f"model-api-{colour}"]
        assert _pods_selected(objects, pdb["spec"]["selector"]["matchLabels"]) == [f"model-api-{colour}"]
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] in _by_kind(objects, "ServiceAccount")
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["MODEL_API_SLOT"] == colour
    return live_slot


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_every_overlay_renders_and_each_object_validates_against_the_kubernetes_schemas(name):
    objects = render(OVERLAYS[name])
    assert objects, f"{name} rendered nothing"
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ServiceAccount", "PodDisruptionBudget"} <= kinds
    for obj in objects:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(
                    f"{name}: {obj['kind']}/{obj['metadata']['name']} invalid for {version}: {exc.message}"
                )


def test_strict_schema_validation_rejects_a_misspelt_field(staging):
    pdb = next(o for o in staging if o["kind"] == "PodDisruptionBudget")
    typo = {**pdb, "spec": {**pdb["spec"], "minAvailabel": 1}}
    with pytest.raises(kubernetes_validate.ValidationError, match="minAvailabel"):
        kubernetes_validate.validate(typo, KUBE_VERSIONS[0], strict=True)


def test_live_service_selects_exactly_one_colour_whose_deployment_exists(staging):
    assert assert_blue_green_invariants(staging) == StagingOverlay(OVERLAYS["staging"]).live_colour()
    assert set(_by_kind(staging, "Deployment")) == {"model-api-blue", "model-api-green"}
    assert {o["metadata"].get("namespace") for o in staging} == {"soil-staging"}


def test_switching_the_live_colour_keeps_the_invariants_and_touches_only_the_selectors(overlay_copy, staging):
    before = overlay_copy.live_colour()
    overlay_copy.set_live(other(before))
    switched = overlay_copy.render()
    assert assert_blue_green_invariants(switched) == other(before)
    changed = [(o["kind"], o["metadata"]["name"]) for o, p in zip(switched, staging, strict=True) if o != p]
    assert sorted(changed) == [("Service", LIVE_SERVICE), ("Service", PREVIEW_SERVICE)]


def test_setting_one_colours_image_leaves_the_other_colour_untouched(overlay_copy, staging):
    ref = ImageRef.parse("127.0.0.1:5000/soil-model-api:0123456789ab-v7@sha256:" + "a" * 64)
    overlay_copy.set_release(
        "green", ref, model_name="soil-carbon", model_version="7", git_revision="0123456789ab"
    )
    bumped = overlay_copy.render()
    changed = [(o["kind"], o["metadata"]["name"]) for o, p in zip(bumped, staging, strict=True) if o != p]
    assert changed == [("Deployment", "model-api-green")]
    green = _by_kind(bumped, "Deployment")["model-api-green"]
    assert green["spec"]["template"]["spec"]["containers"][0]["image"] == str(ref)
    assert green["metadata"]["annotations"]["soilci.io/model-version"] == "7"
    assert overlay_copy.release("green").model_version == "7"
    assert overlay_copy.release("blue") == StagingOverlay(OVERLAYS["staging"]).release("blue")


def test_kustomizations_never_put_slot_in_common_labels_nor_use_deprecated_fields():
    for path in KUSTOMIZE.rglob("kustomization.yaml"):
        kust = yaml.safe_load(path.read_text())
        assert not {"bases", "commonLabels", "patchesStrategicMerge", "patchesJson6902", "vars"} & set(
            kust
        ), path
        for entry in kust.get("labels") or []:
            assert "slot" not in entry.get("pairs", {}), f"{path}: slot in labels rewrites every selector"


def test_each_colour_has_its_own_image_placeholder(staging):
    kust = yaml.safe_load((OVERLAYS["staging"] / "kustomization.yaml").read_text())
    assert sorted(e["name"] for e in kust["images"]) == ["model-api-blue", "model-api-green"]
    for colour in COLOURS:
        own = render(OVERLAYS[f"staging/{colour}"])
        image = _by_kind(own, "Deployment")[f"model-api-{colour}"]["spec"]["template"]["spec"]["containers"][
            0
        ]
        assert image["image"] == f"model-api-{colour}"


def test_pods_run_as_non_root_with_a_read_only_root_and_http_probes(staging):
    for dep in _by_kind(staging, "Deployment").values():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


@pytest.fixture(scope="module")
def argocd_objects() -> dict[str, dict]:
    return {o["kind"]: o for o in render(ROOT / "argocd")}


def test_argocd_objects_match_the_crd_schema(argocd_objects):
    assert set(argocd_objects) == {"Application", "AppProject"}
    for kind, obj in argocd_objects.items():
        jsonschema.validate(obj, ARGOCD_SCHEMAS[kind])
    broken = {**argocd_objects["Application"], "spec": {"project": "soil-ci"}}
    with pytest.raises(jsonschema.ValidationError, match="destination"):
        jsonschema.validate(broken, ARGOCD_SCHEMAS["Application"])


def test_argocd_application_syncs_the_staging_overlay_automatically_with_prune_and_self_heal(argocd_objects):
    app, project = argocd_objects["Application"], argocd_objects["AppProject"]
    assert app["metadata"]["namespace"] == project["metadata"]["namespace"] == "argocd"
    assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    spec = app["spec"]
    assert spec["project"] == project["metadata"]["name"] == "soil-ci"
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]
    assert (ROOT / spec["source"]["path"] / "kustomization.yaml").is_file()
    assert spec["source"]["path"] == "deploy/kustomize/overlays/staging"
    assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"]
    assert {"server": spec["destination"]["server"], "namespace": "soil-staging"} in project["spec"][
        "destinations"
    ]
    allowed = {(g["group"], g["kind"]) for g in project["spec"]["namespaceResourceWhitelist"]}
    for obj in render(OVERLAYS["staging"]):
        group = obj["apiVersion"].rpartition("/")[0]
        assert (group, obj["kind"]) in allowed, f"AppProject soil-ci would refuse {obj['kind']}"
