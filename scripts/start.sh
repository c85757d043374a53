#!/usr/bin/env bash
# `npm start`: bring the servers up (scripts/infra.sh up), then hand over to the orchestrator
# (packages/lab/src/start.ts), which runs the five services in dependency order, waits for each one's
# /health/ready, starts Prometheus (installed by infra.sh; data in .data/prometheus) scraping them,
# prints the URLs, prefixes every line with the service's name, restarts a service that crashes, and
# on Ctrl-C (or SIGTERM) stops Prometheus, then the services in reverse order. The servers stay up until
# `npm run infra:down`. A second `npm start` while one runs says so and exits 0.
#
# Its variables (besides the ports and URLs the services read): WALLETUN_SERVICES (default
# wallet,user,transaction,webhook,gateway), WALLETUN_RUN_DIR (.data/run), WALLETUN_READY_TIMEOUT
# (90 seconds), WALLETUN_STOP_TIMEOUT (15 seconds), WALLETUN_MAX_RESTARTS (5), WALLETUN_PROMETHEUS
# (on), PROMETHEUS_PORT (9090), WALLETUN_TRACES (on; off runs no Zipkin), ZIPKIN_PORT (9411).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/infra.sh up
# exec all the way down (with-node.sh execs node), so signals reach the orchestrator itself.
exec bash scripts/with-node.sh node packages/lab/src/start.ts
