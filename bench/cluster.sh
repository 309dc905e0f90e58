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
BIN="$ROOT/target/release/convene"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "cluster.sh: build first: cargo build --release -p convene-server" >&2; exit 1; }
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PGBIN/initdb" ] || { echo "cluster.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "cluster.sh: Redis is not installed (apt-get install redis-server)" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

TMP="$(mktemp -d /tmp/convene-cluster-bench-XXXXXX)"
AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$TMP"
    AS=(runuser -u postgres --)
fi
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
PGPORT="$(free_port)"
"${AS[@]}" "$PGBIN/initdb" -D "$TMP/pg" -U convene -A trust -E UTF8 --locale=C >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w \
    -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$TMP" start >/dev/null
"${AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U convene convene
REDISPORT="$(free_port)"
redis-server --port "$REDISPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" \
    >"$TMP/redis.log" 2>&1 &
PIDS+=($!)

KEY="bench-admin-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
URLS=()
for N in a b c; do
    PORT="$(free_port)"
    mkdir -p "$TMP/node-$N"
    env CONVENE_ADMIN_KEY="$KEY" CONVENE_LISTEN="127.0.0.1:$PORT" CONVENE_DATA_DIR="$TMP/node-$N" \
        CONVENE_DATABASE_URL="postgres://convene@127.0.0.1:$PGPORT/convene" \
        CONVENE_REDIS_URL="redis://127.0.0.1:$REDISPORT" CONVENE_NODE_ID="$N" \
        CONVENE_MEDIA_PORT=0 CONVENE_MEDIA_IP=127.0.0.1 CONVENE_MAX_CONNECTIONS_PER_IP=0 \
        CONVENE_LOG=warn "$BIN" serve >"$TMP/node-$N.log" 2>&1 &
    PIDS+=($!)
    URLS+=("http://127.0.0.1:$PORT")
done
for U in "${URLS[@]}"; do
    for _ in $(seq 100); do
        curl -sf "$U/healthz" >/dev/null && break
        sleep 0.1
    done
done
# One renewal round, so every node knows the others.
sleep 3
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
