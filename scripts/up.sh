#!/usr/bin/env bash
# The developer stack in one command: set the machine up, build, run the pipeline in compose, serve the model.
#
# Usage: scripts/up.sh [--no-setup]
#   --no-setup  skip scripts/setup.sh (Docker engine, base image and venv are already there)
# Settings: .env (see .env.example). Exit codes: 0 stack up and the run's results published to the DVC
# remote, as main's workflow leaves them; the pipeline's own code when it failed (1 a gate; the model API,
# if it was running, keeps serving its version); 2 usage; 3 no Docker engine or compose, or the stack did not
# come up (a port in use, a service that did not start or is not healthy); 4 build failed; the stack up but
# the results not published: the code of `soilci results push` (3 when there is no soilci).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

setup=1
for arg in "$@"; do
  case "$arg" in
    --no-setup) setup=0 ;;
    -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;  # the comment above
    *) echo "up.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "[up] $*" >&2; }
env_file_value() {  # KEY's last value in .env as compose reads it: `export ` allowed, quotes or a trailing ` # note` dropped
  if [[ -f .env ]]; then
    sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1=//p" .env | tail -1 \
      | sed -e "s/^\"\(.*\)\"[[:space:]]*\(#.*\)\{0,1\}$/\1/" -e t -e "s/^'\(.*\)'[[:space:]]*\(#.*\)\{0,1\}$/\1/" -e t \
            -e 's/[[:space:]]\{1,\}#.*$//' -e 's/[[:space:]]*$//'
  fi
}

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

# Containers are looked up by compose's labels with the docker CLI, not with `compose ps`: a docker-compose
# 1.29 call costs about a CPU-second, and the waits below look every second. The project name is worked out
# as compose does (COMPOSE_PROJECT_NAME from the shell, else .env, else the folder's name; lowercased, only
# [-_a-z0-9]); when no container carries it, compose itself is asked.
env_named=""  # the name .env gives, when the shell gives none
[[ -n "${COMPOSE_PROJECT_NAME+set}" ]] || env_named="$(env_file_value COMPOSE_PROJECT_NAME)"
project="${COMPOSE_PROJECT_NAME-$env_named}"
named="$project"
project="$(printf '%s' "${project:-${root##*/}}" | tr '[:upper:]' '[:lower:]' | tr -cd -- '-_a-z0-9')"
# Named after the folder: compose.yaml's network (and the stages' SOILCI_STAGE_NETWORK) would otherwise be
# `soilci-stack` for every such stack, and one stack's pipeline would register in another's MLflow.
if [[ -z "$named" && -n "$project" ]]; then export COMPOSE_PROJECT_NAME="$project"; fi
stop_hint() {  # compose's `down` for this stack: the project named, unless .env names it (compose reads .env
  # again; a shell's COMPOSE_PROJECT_NAME may be gone by then, and a name from the folder was only exported here)
  if [[ -n "$env_named" ]]; then echo "${compose[*]} down"; else echo "COMPOSE_PROJECT_NAME=$project ${compose[*]} down"; fi
}
cid() {
  local c
  c="$(docker ps -a -q --no-trunc --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --filter label=com.docker.compose.oneoff=False | head -1)"
  [[ -n "$c" ]] || c="$("${compose[@]}" ps -a -q "$1" 2>/dev/null | head -1)"
  echo "$c"
}
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1"; }
url_of() {  # service, container port -> http://host:port as published
  local c hp
  c="$(cid "$1")"
  if [[ -n "$c" ]]; then hp="$(docker port "$c" "$2" 2>/dev/null | head -1)"; fi
  hp="${hp:-$("${compose[@]}" port "$1" "$2" 2>/dev/null | tail -1)}"
  echo "http://${hp/0.0.0.0/127.0.0.1}"
}
json_get() {  # file or URL, keys; prints one line per key, nothing when unreadable or absent
  python3 -c 'import json, sys, urllib.request
src = sys.argv[1]
doc = json.load(urllib.request.urlopen(src, timeout=5) if "://" in src else open(src))
print("\n".join(str(doc[key]) for key in sys.argv[2:]))' "$@" 2>/dev/null || true
}
wait_healthy() {  # service, seconds
  local c="" status deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    [[ -n "$c" ]] || c="$(cid "$1")"
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

say "building images (${BASE_IMAGE:-python:3.11-slim-bookworm} base; unchanged layers come from the cache)"
"${compose[@]}" build || { say "image build failed"; exit 4; }

say "starting the stack: mlflow, then soilci pipeline --register, then model-api"
if ! "${compose[@]}" up -d; then
  c="$(cid pipeline)"
  code=0
  if [[ -n "$c" ]]; then code="$(docker inspect -f '{{.State.ExitCode}}' "$c")"; fi
  if ((code != 0)); then
    say "soilci pipeline failed (exit $code); the end of its output:"
    docker logs --since "$(docker inspect -f '{{.State.StartedAt}}' "$c")" "$c" 2>&1 | tail -n 40 | sed 's/^/    /' >&2
  else  # not the pipeline's verdict: exit 1 would read as a gate that said no
    code=3
    say "the stack did not come up: compose's error is above (a port in use, a service that did not start);" \
      "'${compose[*]} logs' tells more; '$(stop_hint) -v' removes what it created"
  fi
  api="$(cid model-api)"
  if [[ -n "$api" && "$(health "$api")" == healthy ]]; then
    base="$(url_of model-api 8000)"
    { read -r model; read -r served; } < <(json_get "$base/v1/model" name version) || true
    say "the model API keeps serving ${model:-} version ${served:-} at $base"
  fi
  exit "$code"
fi

wait_healthy model-api 300 || exit 3
api_url="$(url_of model-api 8000)"
registered="$(json_get runs/registered.json version)"
# The model API reads runs/registered.json when it starts: restart it when this run registered another version.
if [[ "$(json_get "$api_url/v1/model" version)" != "$registered" ]]; then
  say "restarting the model API to serve version $registered"
  "${compose[@]}" restart model-api >/dev/null
  wait_healthy model-api 300 || exit 3
fi
# As main's workflow does after its run: the outputs and this commit's results record into the DVC remote,
# so a later PR's `soilci report --base main` has main's numbers. From the host, as the tree's owner, with
# its DVC config and credentials (the stack's driver runs as root in a container).
soilci_cli="$root/.venv/bin/soilci"
[[ -x "$soilci_cli" ]] || soilci_cli="$(command -v soilci || true)"
publish_code=0
if [[ -z "$soilci_cli" ]]; then
  publish_code=3
  results="NOT published: no soilci here (scripts/setup.sh makes .venv), then: .venv/bin/soilci results push"
elif published="$("$soilci_cli" results push 2>&1)"; then
  results="${published##*published for reports: } (for soilci report --base main)"
else
  publish_code=$?
  say "the stack is up, but publishing its results to the DVC remote failed (exit $publish_code):"
  echo "$published" | tail -n 20 | sed 's/^/    /' >&2
  results="NOT published (exit $publish_code); fix the DVC remote, then: .venv/bin/soilci results push"
fi

{ read -r model; read -r served; } < <(json_get "$api_url/v1/model" name version) || true
mlflow_url="$(url_of mlflow 5000)"
run_dir="$(ls -d runs/*/ 2>/dev/null | sort | tail -1)"
metrics="$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))
print("  ".join(f"{k} {m[k]:.3g}" for k in ("rmse", "r2", "rpd") if k in m))' metrics/metrics.json \
  2>/dev/null || true)"
project="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$(cid model-api)")"
stop="$(stop_hint)"
cat <<EOF

soil-ci stack is up (${compose[*]} project $project):
  model API    $api_url/docs   serving $model version $served (runs/registered.json)
  MLflow UI    $mlflow_url      runs, registered model $model
  pipeline     $root/${run_dir:-runs/}   run.json and stage logs of this run
  outputs      $root/   metrics/metrics.json, metrics/predictions.csv, reports/ (drift, plots)
  benchmark    ${metrics:-see metrics/metrics.json}
  results      $results
  stop         ${stop}        reset (volumes too): ${stop} -v
EOF
exit "$publish_code"
