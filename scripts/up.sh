#!/usr/bin/env bash
# The developer stack in one command: set the machine up, run the pipeline in compose, serve the model.
#
# Usage: scripts/up.sh [--no-setup]
#   --no-setup  skip scripts/setup.sh (Docker engine, base image and venv are already there)
# Settings: .env (see .env.example). Exit codes: 0 stack up; 1 a stage or gate failed (the model API,
# if it was running, keeps serving its version); 2 usage; 3 no Docker engine or compose; 4 build failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

setup=1
for arg in "$@"; do
  case "$arg" in
    --no-setup) setup=0 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "up.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "[up] $*" >&2; }
env_file_value() { if [[ -f .env ]]; then sed -n "s/^[[:space:]]*$1=//p" .env | tail -1 | tr -d "\"'"; fi; }

# .env may name the base image; setup.sh otherwise makes or finds one that works offline.
BASE_IMAGE="${BASE_IMAGE:-$(env_file_value BASE_IMAGE)}"
if [[ -n "$BASE_IMAGE" ]]; then export BASE_IMAGE; else unset BASE_IMAGE; fi
if ((setup)); then
  # shellcheck source=scripts/setup.sh
  source scripts/setup.sh
  cd "$root"
elif [[ -z "${BASE_IMAGE:-}" ]] && docker image inspect soilci-base:bookworm >/dev/null 2>&1; then
  export BASE_IMAGE=soilci-base:bookworm
fi

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  say "neither 'docker compose' nor 'docker-compose' is installed (scripts/setup.sh installs docker-compose)"
  exit 3
fi
docker info >/dev/null 2>&1 || { say "no Docker engine answers; start dockerd or run scripts/setup.sh"; exit 3; }

rev="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
[[ "$rev" != unknown && -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && rev="$rev-dirty"
export SOILCI_VCS_REF="${SOILCI_VCS_REF:-$rev}"

cid() { "${compose[@]}" ps -q "$1" 2>/dev/null | head -1; }
exit_code() { docker inspect -f '{{.State.ExitCode}}' "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1"; }
url_of() {  # service, container port -> http://host:port as published
  local hp; hp="$("${compose[@]}" port "$1" "$2" 2>/dev/null | tail -1)"
  echo "http://${hp/0.0.0.0/127.0.0.1}"
}

# Copy the pipeline's outputs out of the workspace volume, so they can be opened from the host.
export_outputs() {
  local c; c="$(cid prepare)"; [[ -n "$c" ]] || return 0
  rm -rf runs/compose && mkdir -p runs/compose
  for path in params.yaml dvc.lock reports metrics; do
    docker cp "$c:/work/$path" runs/compose/ >/dev/null 2>&1 || true
  done
}

wait_healthy() {  # service, seconds
  local c status deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    c="$(cid "$1")"
    status="$( [[ -n "$c" ]] && health "$c" || echo missing)"
    case "$status" in
      healthy) return 0 ;;
      exited|dead|unhealthy) break ;;
    esac
    sleep 1
  done
  say "$1 is not healthy ($status); its log:"
  if [[ -n "$c" ]]; then docker logs --tail 40 "$c" >&2; fi
  return 1
}

json_get() {  # url, dotted keys (model_version.version); prints nothing when unreachable or absent
  python3 - "$1" "$2" <<'EOF' 2>/dev/null || true
import json, sys, urllib.request
try:
    value = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
    for key in sys.argv[2].split("."):
        value = value[key]
    print(value)
except Exception:
    pass
EOF
}

say "building images (${BASE_IMAGE:-python:3.11-slim-bookworm} base; unchanged layers come from the cache)"
"${compose[@]}" build || { say "image build failed"; exit 4; }

say "starting the stack: mlflow -> prepare -> drift -> train -> register -> model-api"
if ! "${compose[@]}" up -d; then
  export_outputs
  failed=""
  for stage in prepare drift train register; do
    c="$(cid "$stage")"
    [[ -n "$c" ]] || continue
    code="$(exit_code "$c")"
    [[ "$code" == 0 ]] && continue
    failed="$stage"
    started="$(docker inspect -f '{{.State.StartedAt}}' "$c")"
    say "stage '$stage' failed (exit $code); its output:"
    docker logs --since "$started" "$c" 2>&1 | sed 's/^/    /' >&2
    case "$stage" in
      prepare|drift) say "stopped before training: nothing was trained or registered" ;;
      *) say "the stages after '$stage' did not run" ;;
    esac
    break
  done
  if [[ -z "$failed" ]]; then
    say "the stack did not come up (see above); '${compose[*]} ps' and '${compose[*]} logs SERVICE' tell more"
  fi
  say "this run's outputs (drift report, metrics): $root/runs/compose/"
  api="$(cid model-api)"
  if [[ -n "$api" && "$(health "$api")" == healthy ]]; then
    base="$(url_of model-api 8000)"
    say "the model API keeps serving $(json_get "$base/v1/model" name)" \
      "version $(json_get "$base/v1/model" version) at $base"
  fi
  exit 1
fi

wait_healthy model-api 300 || exit 1
api_url="$(url_of model-api 8000)"
mlflow_url="$(url_of mlflow 5000)"
model="$(json_get "$api_url/v1/model" name)"
served="$(json_get "$api_url/v1/model" version)"
staging="$(json_get "$mlflow_url/api/2.0/mlflow/registered-models/alias?name=$model&alias=staging" \
  model_version.version)"
# The model API resolves the alias when it starts: restart it when this run moved the alias.
if [[ -n "$staging" && "$served" != "$staging" ]]; then
  say "alias staging moved from version $served to $staging: restarting the model API"
  "${compose[@]}" restart model-api >/dev/null
  wait_healthy model-api 300 || exit 1
  served="$staging"
fi
export_outputs
project="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$(cid model-api)")"
metrics="$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))
print("  ".join(f"{k} {m[k]:.3g}" for k in ("rmse", "r2", "rpd") if k in m))' runs/compose/metrics/metrics.json \
  2>/dev/null || true)"
cat <<EOF

soil-ci stack is up (${compose[*]} project $project):
  model API    $api_url/docs   serving $model version $served (alias staging)
  MLflow UI    $mlflow_url      runs, registered model $model
  report       $root/runs/compose/   metrics/metrics.json, metrics/predictions.csv, reports/ (drift, plots)
  benchmark    ${metrics:-see runs/compose/metrics/metrics.json}
  stop         ${compose[*]} down        reset (volumes too): ${compose[*]} down -v
EOF
