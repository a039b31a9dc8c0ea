"""Helpers the delivery tests share: a seeded bare manifests repo, git reads, rendered-object lookups."""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from soil_contracts.model import ModelMetadata
from soilci.delivery.bump import BumpRequest, bump_request
from soilci.delivery.manifests_repo import commit_and_push
from soilci.delivery.overlay import DEFAULT_OVERLAY, LIVE_SERVICE, PREVIEW_SERVICE, SLOTS, other, render
from tests.support import REPO_ROOT

KUSTOMIZE = REPO_ROOT / "deploy" / "kustomize"
OVERLAY = DEFAULT_OVERLAY
MODEL_NAME = "soil-soc"  # params.yaml's register.model_name
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGE_A = f"127.0.0.1:5000/soil-model-api:0123456789ab-v7@{DIGEST_A}"
IMAGE_B = f"127.0.0.1:5000/soil-model-api:ba9876543210-v8@{DIGEST_B}"
NO_SERVICE = "http://127.0.0.1:9"  # nothing listens: refusals happen before anything is asked
# The Docker tests' model: registered under its own name, so other tests' aliases stay theirs.
DOCKER_MODEL = "soil-soc-delivery"
REVISION = "0123456789abcdef0123456789abcdef01234567"
# The soilci.json of a trained, not yet registered model.
TRAINED = ModelMetadata(
    name=MODEL_NAME, git_revision="abc", data_version="d", target="SOC_target", target_unit="%", bands=["wl_350"], model="pls"
)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def seed_manifests_repo(
    root: Path, edit: Callable[[Path], None] | None = None, *, kustomize: Path = KUSTOMIZE
) -> str:
    """A bare repo on branch main holding ``kustomize`` as deploy/kustomize, as a manifests repo would.

    ``edit`` gets the work tree's overlay folder before the seed commit.
    """
    bare, work = root / "manifests.git", root / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    shutil.copytree(kustomize, work / "deploy" / "kustomize")
    if edit:
        edit(work / OVERLAY)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", "-A", cwd=work)
    git(
        "-c", "user.name=seed", "-c", "user.email=seed@localhost", "commit", "--quiet", "-m", "seed", cwd=work
    )
    git("push", "--quiet", str(bare), "main", cwd=work)
    return str(bare)


def log(repo: str) -> list[str]:
    """Commit subjects on main, newest first."""
    return git("--git-dir", repo, "log", "--format=%s", "main").splitlines()


def show(repo: str, rel: str) -> str:
    """A file of the staging overlay as main has it."""
    return git("--git-dir", repo, "show", f"main:{OVERLAY}/{rel}")


def request(image: str) -> BumpRequest:
    return bump_request(image, model_name=MODEL_NAME)


def switch_live_by_hand(repo: str) -> None:
    """A commit that swaps the slots, as an SRE's promote would, without the checks."""

    def change(checkout):
        ov = checkout.overlay
        ov.set_live(other(ov.live_slot()))
        return "staging: switch slots", None

    commit_and_push(repo, change)


@functools.cache
def _rendered(path: Path) -> list[dict]:
    return render(path)


def rendered(path: Path) -> list[dict]:
    """The objects kustomize renders from ``path`` (rendered once per session; a fresh copy each call)."""
    return copy.deepcopy(_rendered(Path(path)))


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    """Rendered objects of ``kind``, by name."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def find(objects: list[dict], kind: str, name: str) -> dict:
    """The rendered object ``kind``/``name`` (KeyError if absent)."""
    return by_kind(objects, kind)[name]


def pod(objects: list[dict], deployment: str) -> dict:
    """The pod spec of a rendered Deployment's template."""
    return find(objects, "Deployment", deployment)["spec"]["template"]["spec"]


def container(objects: list[dict], deployment: str) -> dict:
    """The only container of a rendered Deployment's pod template."""
    (spec,) = pod(objects, deployment)["containers"]
    return spec


def pods_selected(objects: list[dict], selector: dict) -> list[str]:
    """Names of the Deployments whose pods ``selector`` matches."""
    return [
        name
        for name, dep in by_kind(objects, "Deployment").items()
        if all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
    ]


def assert_blue_green_invariants(objects: list[dict]) -> str:
    """The live Service selects exactly one slot's Deployment, the preview Service the other; returns the live slot."""
    services = by_kind(objects, "Service")
    assert set(services) == {LIVE_SERVICE, PREVIEW_SERVICE}
    live = services[LIVE_SERVICE]["spec"]["selector"].get("slot")
    assert live in SLOTS
    assert pods_selected(objects, services[LIVE_SERVICE]["spec"]["selector"]) == [f"model-api-{live}"]
    assert pods_selected(objects, services[PREVIEW_SERVICE]["spec"]["selector"]) == [
        f"model-api-{other(live)}"
    ]
    for slot in SLOTS:
        name = f"model-api-{slot}"
        own = find(objects, "Deployment", name)["spec"]["selector"]["matchLabels"]
        assert own["slot"] == slot
        # A Deployment's selector picks its own pods and never the other slot's.
        assert pods_selected(objects, own) == [name]
        pdb = find(objects, "PodDisruptionBudget", name)
        assert pods_selected(objects, pdb["spec"]["selector"]["matchLabels"]) == [name]
        assert pod(objects, name)["serviceAccountName"] in by_kind(objects, "ServiceAccount")
        env = {e["name"]: e.get("value") for e in container(objects, name)["env"]}
        assert env["MODEL_API_SLOT"] == slot
    return live


def quantity(value: str) -> float:
    """A Kubernetes quantity (``768Mi``, ``64Mi``, ``500m``, ``1``) as a plain number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()
    return float(number) * units[unit]


def run_container_spec(client, pod: dict, name: str):
    """``docker run`` a pod's only container as Kubernetes would: image, args, env, ports, user,
    read-only root, dropped capabilities, emptyDir mounts, resource limits."""
    (container,) = pod["containers"]
    pod_ctx, ctx = pod.get("securityContext", {}), container.get("securityContext", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmpfs = {}
    for mount in container.get("volumeMounts", []):
        empty_dir = volumes[mount["name"]]["emptyDir"]  # the only volume kind the manifests use
        tmpfs[mount["mountPath"]] = f"size={int(quantity(empty_dir.get('sizeLimit', '64Mi')))}"
    limits = container["resources"]["limits"]
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
    return client.containers.run(
        container["image"],
        command=container.get("args"),
        entrypoint=container.get("command"),
        environment={e["name"]: e["value"] for e in container.get("env", [])},
        user=f"{uid}:{gid}",
        read_only=ctx["readOnlyRootFilesystem"],
        cap_drop=ctx["capabilities"]["drop"],
        security_opt=["no-new-privileges"] if ctx.get("allowPrivilegeEscalation") is False else None,
        tmpfs=tmpfs,
        mem_limit=int(quantity(limits["memory"])),
        nano_cpus=int(quantity(limits["cpu"]) * 1e9),
        ports={f"{p['containerPort']}/tcp": ("127.0.0.1", None) for p in container["ports"]},
        name=name,
        detach=True,
    )


def small_service_image(client, context: Path) -> str:
    """A service image of one small layer (FROM scratch), for publish tests where the model-api's own
    content does not matter; tagged uniquely, for the caller to remove."""
    import secrets

    context.mkdir(parents=True)
    (context / "service.txt").write_text("a stand-in service image\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY service.txt /service.txt\n")
    tag = f"soilci-test-service:{secrets.token_hex(4)}"
    client.images.build(path=str(context), tag=tag, pull=False, rm=True)
    return tag


def host_url(container, port: int) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


class StallingProxy:
    """A loopback TCP proxy in front of a registry that holds the first write of a push unanswered.

    While ``stalling``, the first POST, PATCH or PUT under ``/v2/`` (a blob upload or the manifest)
    is neither forwarded nor answered and ``stalled`` is set: a push cut off midway, reached by an
    event rather than by timing. ``release()`` drops the held connections and forwards from then on.
    """

    WRITE = re.compile(rb"(?:^|\r\n)(?:POST|PATCH|PUT) /v2/")

    def __init__(self, upstream_port: int):
        import socket
        import threading

        self.upstream_port = upstream_port
        self.stalling = True
        self.stalled = threading.Event()
        self._sockets: list = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                return
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and self.stalling and self.WRITE.search(data):
                    self.stalled.set()
                    return  # held: the connection stays open and unanswered until release()
                dst.sendall(data)
        except OSError:
            return
        for sock in (src, dst):
            sock.close()

    def release(self) -> None:
        """Forward everything from now on; close the connections held so far."""
        self.stalling = False
        for sock in self._sockets:
            sock.close()

    def close(self) -> None:
        self.release()
        self._server.close()
