#!/usr/bin/env bash
# Three nodes on one Redis and one PostgreSQL (each started here in a temp dir on a free
# loopback port, stopped at the end), release builds, then bench/cluster.mjs: members
# spread over the nodes, how fast a removal on one node reaches a member on another, and
# how long the cluster-wide listings take. Writes bench/results/cluster.json.
#
#   bench/cluster.sh [MEMBERS=600] [REMOVALS=90]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEMBERS="${1:-600}"
REMOVALS="${2:-90}"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
source "$ROOT/bench/nodes.sh"
start_postgres
start_redis
for N in a b c; do
    start_node "$N"
done
wait_for_nodes
STATUS=0
node --experimental-websocket --no-warnings "$ROOT/bench/cluster.mjs" "$KEY" "${URLS[@]}" \
    "$MEMBERS" "$REMOVALS" >"$TMP/cluster.json" || STATUS=$?
python3 - "$TMP/cluster.json" "$OUT/cluster.json" <<'PY'
import json, subprocess, sys, time
d = json.load(open(sys.argv[1]))
d["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
d["date"] = time.strftime("%Y-%m-%d", time.gmtime())
json.dump(d, open(sys.argv[2], "w"), indent=1)
PY
cat "$OUT/cluster.json"
exit "$STATUS"
