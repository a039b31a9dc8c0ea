"""Kustomize overlays and Argo CD objects: they render, validate against schemas and keep blue/green
sound. The rendered container spec running in Docker with its probes passing is in test_promote, beside
the promote and rollback tests that use the same running slots."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest
import yaml

from soilci.delivery.overlay import SLOTS, StagingOverlay
from tests.delivery.support import (
    KUSTOMIZE,
    assert_blue_green_invariants,
    by_kind,
    container,
    find,
    pod,
    rendered,
)
from tests.support import REPO_ROOT

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
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_STR_LIST = {"type": "array", "items": _STR}
_STR_MAP = {"type": "object", "additionalProperties": _STR}


def _object(*required: str, closed: bool = True, **properties: dict) -> dict:
    """An object schema with ``required`` fields; ``closed`` refuses fields not in ``properties``."""
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


_GROUP_KIND = _object("group", "kind", group=_STR, kind=_STR)
_DESTINATION = _object(name=_STR, namespace=_STR, server=_STR)
_METADATA = _object(
    "name",
    "namespace",
    closed=False,
    name=_STR,
    namespace=_STR,
    finalizers=_STR_LIST,
    labels={"type": "object"},
)


def _argocd_object(spec: dict) -> dict:
    """An Argo CD object (``argoproj.io/v1alpha1``) whose spec is ``spec``."""
    return _object(
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        closed=False,
        apiVersion={"const": "argoproj.io/v1alpha1"},
        metadata=_METADATA,
        spec=spec,
    )


ARGOCD_SCHEMAS = {
    "Application": _argocd_object(
        _object(
            "destination",
            "project",
            project=_STR,
            destination=_DESTINATION,
            revisionHistoryLimit=_INT,
            source=_object("repoURL", repoURL=_STR, path=_STR, targetRevision=_STR),
            syncPolicy=_object(
                automated=_object(prune=_BOOL, selfHeal=_BOOL, allowEmpty=_BOOL, enabled=_BOOL),
                syncOptions=_STR_LIST,
                managedNamespaceMetadata=_object(labels=_STR_MAP, annotations=_STR_MAP),
                retry=_object(
                    limit=_INT,
                    refresh=_BOOL,
                    backoff=_object(duration=_STR, factor=_INT, maxDuration=_STR),
                ),
            ),
        ),
    ),
    "AppProject": _argocd_object(
        _object(
            description=_STR,
            sourceRepos=_STR_LIST,
            destinations={"type": "array", "items": _DESTINATION},
            clusterResourceWhitelist={"type": "array", "items": _GROUP_KIND},
            namespaceResourceWhitelist={"type": "array", "items": _GROUP_KIND},
            orphanedResources=_object(warn=_BOOL),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_every_overlay_renders_and_each_object_validates_against_the_kubernetes_schemas(name):
    objects = rendered(OVERLAYS[name])
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


def test_strict_schema_validation_rejects_a_misspelt_field():
    pdb = next(iter(by_kind(rendered(OVERLAYS["staging"]), "PodDisruptionBudget").values()))
    typo = {**pdb, "spec": {**pdb["spec"], "minAvailabel": 1}}
    with pytest.raises(kubernetes_validate.ValidationError, match="minAvailabel"):
        kubernetes_validate.validate(typo, KUBE_VERSIONS[0], strict=True)


def test_live_service_selects_exactly_one_slot_whose_deployment_exists():
    staging = rendered(OVERLAYS["staging"])
    assert assert_blue_green_invariants(staging) == StagingOverlay(OVERLAYS["staging"]).live_slot()
    assert set(by_kind(staging, "Deployment")) == {"model-api-blue", "model-api-green"}
    assert {o["metadata"].get("namespace") for o in staging} == {"soil-staging"}


def test_kustomizations_never_put_slot_in_common_labels_nor_use_deprecated_fields():
    for path in KUSTOMIZE.rglob("kustomization.yaml"):
        kust = yaml.safe_load(path.read_text())
        assert not {"bases", "commonLabels", "patchesStrategicMerge", "patchesJson6902", "vars"} & set(
            kust
        ), path
        for entry in kust.get("labels") or []:
            assert "slot" not in entry.get("pairs", {}), f"{path}: slot in labels rewrites every selector"


def test_each_slot_has_its_own_image_placeholder():
    kust = yaml.safe_load((OVERLAYS["staging"] / "kustomization.yaml").read_text())
    assert sorted(e["name"] for e in kust["images"]) == ["model-api-blue", "model-api-green"]
    for slot in SLOTS:
        own = rendered(OVERLAYS[f"staging/{slot}"])
        assert container(own, f"model-api-{slot}")["image"] == f"model-api-{slot}"


def test_pods_run_as_non_root_with_a_read_only_root_and_http_probes():
    staging = rendered(OVERLAYS["staging"])
    for name in by_kind(staging, "Deployment"):
        spec = pod(staging, name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        main = container(staging, name)
        ctx = main["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
        assert {"cpu", "memory"} <= set(main["resources"]["limits"])
        assert {m["mountPath"] for m in main["volumeMounts"]} == {"/tmp"}


def test_each_slots_pods_are_annotated_for_prometheus_to_scrape_their_metrics_port():
    staging = rendered(OVERLAYS["staging"])
    for name in by_kind(staging, "Deployment"):
        template = find(staging, "Deployment", name)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        ports = {p["containerPort"] for p in container(staging, name)["ports"]}
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports
        assert annotations["prometheus.io/path"] == "/metrics"
        slot = template["metadata"]["labels"]["slot"]  # the metrics' slot label comes from MODEL_API_SLOT
        assert {"name": "MODEL_API_SLOT", "value": slot} in container(staging, name)["env"]


@pytest.fixture(scope="module")
def argocd_objects() -> dict[str, dict]:
    return {o["kind"]: o for o in rendered(REPO_ROOT / "argocd")}


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
    assert (REPO_ROOT / spec["source"]["path"] / "kustomization.yaml").is_file()
    assert spec["source"]["path"] == "deploy/kustomize/overlays/staging"
    assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"]
    assert {"server": spec["destination"]["server"], "namespace": "soil-staging"} in project["spec"][
        "destinations"
    ]
    allowed = {(g["group"], g["kind"]) for g in project["spec"]["namespaceResourceWhitelist"]}
    for obj in rendered(OVERLAYS["staging"]):
        group = obj["apiVersion"].rpartition("/")[0]
        assert (group, obj["kind"]) in allowed, f"AppProject soil-ci would refuse {obj['kind']}"
