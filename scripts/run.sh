#!/usr/bin/env bash
# `make run`: start `noslate serve` with the embedded default config, deploy every
# function in examples/, print how to call them, then stay in the foreground until
# Ctrl-C (which stops the daemon gracefully).
# Overrides: DATA_BIND, CONTROL_BIND (HOST:PORT), STATE_DIR, NOSLATE_CONTROL_TOKEN.
set -euo pipefail
cd "$(dirname "$0")/.."
NOSLATE=.venv/bin/noslate
DATA_BIND="${DATA_BIND:-127.0.0.1:8080}"
CONTROL_BIND="${CONTROL_BIND:-127.0.0.1:8081}"
if [ -z "${STATE_DIR:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then STATE_DIR=/var/lib/noslate; else STATE_DIR="$PWD/state"; fi
fi
export NOSLATE_CONTROL="$CONTROL_BIND"
data_port="${DATA_BIND##*:}"

"$NOSLATE" serve --data-bind "$DATA_BIND" --control-bind "$CONTROL_BIND" --state-dir "$STATE_DIR" &
daemon=$!
stop() { kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; }
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

for _ in $(seq 1 200); do
  if curl -fsS "http://$CONTROL_BIND/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$daemon" 2>/dev/null; then
    wait "$daemon" || status=$?
    echo "run: the daemon exited (status ${status:-0}) before it was ready; see the messages above" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS "http://$CONTROL_BIND/readyz" >/dev/null || { echo "run: daemon not ready after 20 s" >&2; stop; exit 1; }

for dir in examples/*/; do
  name="$(basename "$dir")"
  code="$(ls "$dir" | grep -E '^(index|worker)\.(js|mjs|ts|tsx|jsx)$' | head -n1 || true)"
  [ -n "$code" ] || continue
  args=("$name" "$dir$code")
  [ -f "${dir}profile.json" ] && args+=(--profile "${dir}profile.json")
  "$NOSLATE" deploy "${args[@]}" || echo "run: deploying $name failed (see above)" >&2
done

cat <<EOT

noslate is serving (state in $STATE_DIR). Try:

  curl http://hello.localhost:$data_port/a?b=1
  curl -d '{"name":"Ada"}' http://json-api.localhost:$data_port/
  curl http://counter.localhost:$data_port/?key=visits
  curl -N http://stream.localhost:$data_port/?n=5

  NOSLATE_CONTROL=$CONTROL_BIND $NOSLATE functions
  NOSLATE_CONTROL=$CONTROL_BIND $NOSLATE instances
  NOSLATE_CONTROL=$CONTROL_BIND $NOSLATE logs hello
  $NOSLATE plugins

Ctrl-C stops the daemon.
EOT
wait "$daemon"
