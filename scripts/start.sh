#!/usr/bin/env bash
# `npm start`: bring the servers up (scripts/infra.sh up), then run every service in this terminal,
# each line prefixed with its name. Ctrl-C (or SIGTERM) stops the services; the servers stay up
# until `npm run infra:down`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/infra.sh up

services=()
for name in wallet user transaction gateway; do
  [ -f "packages/$name/src/main.ts" ] && services+=("$name")
done
if [ "${#services[@]}" -eq 0 ]; then
  echo "start: the servers are up; no service has a src/main.ts yet"
  exit 0
fi

pids=()
stop() {
  trap - INT TERM
  echo "start: stopping ${services[*]}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
  exit 0
}
trap stop INT TERM
for name in "${services[@]}"; do
  # with-node.sh execs node, so $! is the service itself; its output goes through sed for a prefix.
  bash scripts/with-node.sh node "packages/$name/src/main.ts" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
done
wait
