#!/usr/bin/env bash
# Compares the admin API's throughput of two gatehouse binaries on this
# machine, alternating them for 3 rounds (these machines are noisy: compare
# medians of the same run): wrk, 2 threads, 32 connections, 10 s each, on
# GET /healthz (the fixed cost of a request: middleware, metrics, request id)
# and GET /api/v1/users/1 (authenticated read).
# Usage: bash benches/http_compare.sh OLD_BINARY NEW_BINARY   (needs wrk, curl)
# E.g. build the old one with
#   git worktree add /tmp/old <commit> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release)
set -euo pipefail
old=${1:?old binary}; new=${2:?new binary}
run() {
  local bin=$1 port=$2 label=$3 dir token
  dir=$(mktemp -d)
  (cd "$dir" && GATEHOUSE_HTTP__LISTEN=127.0.0.1:$port GATEHOUSE_FTP__ENABLED=false "$bin" serve >/dev/null 2>&1 &)
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  token=$(cat "$dir/data/root.token")
  for path in /healthz /api/v1/users/1; do
    echo "$label $path $(wrk -t2 -c32 -d10s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path" | awk '/Requests\/sec/ {print $2}') req/s"
  done
  pkill -f "$bin serve" || true
  sleep 1
  rm -rf "$dir"
}
for round in 1 2 3; do
  echo "round $round"
  run "$old" 18081 old
  run "$new" 18082 new
done
