#!/usr/bin/env bash
# Create the kind staging cluster, install Argo CD and hand it the soil-ci Application. Idempotent.
# Needs docker, kind and kubectl on a machine that can run kind; see deploy/kind/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${CLUSTER:-soil-staging}"
ARGOCD_VERSION="${ARGOCD_VERSION:-v3.3.6}"
MANIFESTS_REPO="${MANIFESTS_REPO:-https://github.com/soil-ci/soil-ci-manifests.git}"
MANIFESTS_BRANCH="${MANIFESTS_BRANCH:-main}"
PLACEHOLDER_REPO="https://github.com/soil-ci/soil-ci-manifests.git"
CTX="kind-${CLUSTER}"

log() { echo "[kind] $*" >&2; }
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { log "missing $tool: install it first (see deploy/kind/README.md)"; exit 2; }
done

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "cluster $CLUSTER exists"
else
  log "creating cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config deploy/kind/kind-config.yaml --wait 180s
fi

# Argo CD, pinned; server-side apply because its CRDs exceed the client-side annotation limit.
log "installing Argo CD $ARGOCD_VERSION"
kubectl --context "$CTX" create namespace argocd --dry-run=client -o yaml | kubectl --context "$CTX" apply -f -
kubectl --context "$CTX" apply -n argocd --server-side --force-conflicts \
  -f "https://raw.githubusercontent.com/argoproj/argo-cd/${ARGOCD_VERSION}/manifests/install.yaml"
for d in argocd-server argocd-repo-server argocd-redis; do
  kubectl --context "$CTX" -n argocd rollout status "deployment/$d" --timeout=300s
done
kubectl --context "$CTX" -n argocd rollout status statefulset/argocd-application-controller --timeout=300s

# A private manifests repo needs credentials: a repository Secret Argo CD picks up by its label.
if [[ -n "${MANIFESTS_TOKEN:-}" ]]; then
  log "adding credentials for $MANIFESTS_REPO"
  kubectl --context "$CTX" -n argocd create secret generic soil-ci-manifests-repo \
    --from-literal=type=git --from-literal=url="$MANIFESTS_REPO" \
    --from-literal=username="${MANIFESTS_USER:-x-access-token}" --from-literal=password="$MANIFESTS_TOKEN" \
    --dry-run=client -o yaml \
    | kubectl --context "$CTX" label --local -f - argocd.argoproj.io/secret-type=repository -o yaml \
    | kubectl --context "$CTX" apply -f -
fi

# The AppProject and the Application, pointed at this installation's manifests repo and branch.
log "applying argocd/ (repo $MANIFESTS_REPO, branch $MANIFESTS_BRANCH)"
kubectl --context "$CTX" kustomize argocd \
  | sed -e "s|${PLACEHOLDER_REPO}|${MANIFESTS_REPO}|g" -e "s|targetRevision: main|targetRevision: ${MANIFESTS_BRANCH}|" \
  | kubectl --context "$CTX" apply -f -

log "waiting for Argo CD to sync model-api-staging"
kubectl --context "$CTX" -n argocd wait application/model-api-staging \
  --for=jsonpath='{.status.sync.status}'=Synced --timeout=300s
kubectl --context "$CTX" -n soil-staging get deployments,services,pdb
log "done. Live:    kubectl --context $CTX -n soil-staging port-forward svc/model-api 8080:80"
log "      Preview: kubectl --context $CTX -n soil-staging port-forward svc/model-api-preview 8081:80"
