#!/usr/bin/env bash
# `make run`: the two echo backends, then `gantry run` on this directory, which
# starts and supervises stock Envoy for the Gateway. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

ENVOY=${GANTRY_ENVOY:-.envoy/envoy/_bin/envoy}
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

python3 examples/quickstart/echo.py echo 18080 & pids+=($!)
python3 examples/quickstart/echo.py echo-v2 18081 & pids+=($!)

cat <<'MSG'

gantry is starting stock Envoy for Gateway default/eg (listener port 8080).
Once Envoy is up, try:

  curl -H 'Host: www.example.com' localhost:8080/
  curl -H 'Host: www.example.com' localhost:8080/v2      # 50/50 between echo and echo-v2
  curl -H 'Host: api.example.com' localhost:8080/api/hello
  curl -H 'Host: nowhere.example.com' localhost:8080/     # 404: no route for that host

Envoy's config:   curl -s <envoy admin URL printed below>/config_dump
gantry's status:  curl -s localhost:18001/debug/status
Edit examples/quickstart/*.yaml and the change is live within a second.

MSG

cargo run --quiet -- run --config-dir examples/quickstart --envoy "$ENVOY" &
pids+=($!)
wait "${pids[-1]}"
