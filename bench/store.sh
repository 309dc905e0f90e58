#!/usr/bin/env bash
# The store under load, SQLite against PostgreSQL: for each, a fresh release server (on
# the last core; the tools on the others), then
#   - admin writes (bench/admin-writes.mjs): PATCHes of one room from 20 writers at once
#     (they serialize on the room) and of 20 rooms (they need not);
#   - a join storm (convene-load --scenario storm): members joining one room at once,
#     each join one admission read of the store.
# PostgreSQL is a throwaway cluster in a temp dir on a free loopback port (initdb as the
# postgres user when run as root), stopped at the end. RUNS rounds of both (the report
# quotes medians). Writes bench/results/store-*.json.
#
#   bench/store.sh [MEMBERS=2000] [WRITES=2000] [RUNS=3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEMBERS="${1:-2000}"
WRITES="${2:-2000}"
RUNS="${3:-3}"
BIN="$ROOT/target/release/convene"
LOAD="$ROOT/target/release/convene-load"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
[ -x "$BIN" ] && [ -x "$LOAD" ] || {
    echo "store.sh: build first: cargo build --release -p convene-server -p convene-load" >&2
    exit 1
}
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PGBIN/initdb" ] || { echo "store.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
CORES="$(nproc)"
SERVER_CPU=$((CORES - 1))
TOOL_CPUS="0-$((CORES > 1 ? CORES - 2 : 0))"
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

TMP="$(mktemp -d /tmp/convene-store-bench-XXXXXX)"
AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$TMP"
    AS=(runuser -u postgres --)
fi
PGPORT="$(free_port)"
cleanup() {
    [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
"${AS[@]}" "$PGBIN/initdb" -D "$TMP/pg" -U convene -A trust -E UTF8 --locale=C >/dev/null
# PostgreSQL shares the tools' cores: the server's core is the server's alone.
"${AS[@]}" taskset -c "$TOOL_CPUS" "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w \
    -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$TMP" start >/dev/null

rm -f "$OUT"/store-*.json
python3 - "$OUT/store-meta.json" "$MEMBERS" "$WRITES" "$RUNS" <<'PY'
import json, subprocess, sys, time
out, members, writes, runs = sys.argv[1:]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
json.dump({"commit": commit, "date": time.strftime("%Y-%m-%d", time.gmtime()), "members": int(members),
           "writes": int(writes), "runs": int(runs)}, open(out, "w"), indent=1)
PY

for RUN in $(seq "$RUNS"); do
for STORE in sqlite postgres; do
    KEY="bench-admin-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    PORT="$(free_port)"
    DATA="$TMP/data-$STORE-$RUN"
    ENV=(CONVENE_ADMIN_KEY="$KEY" CONVENE_LISTEN="127.0.0.1:$PORT" CONVENE_DATA_DIR="$DATA"
        CONVENE_MEDIA_PORT=0 CONVENE_MEDIA_IP=127.0.0.1 CONVENE_MAX_CONNECTIONS_PER_IP=0
        CONVENE_LOG=warn)
    if [ "$STORE" = postgres ]; then
        DB="convene$RUN"
        "${AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U convene "$DB"
        ENV+=(CONVENE_DATABASE_URL="postgres://convene@127.0.0.1:$PGPORT/$DB")
    fi
    env "${ENV[@]}" taskset -c "$SERVER_CPU" "$BIN" serve >"$TMP/server-$STORE.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
        sleep 0.1
    done
    echo "== run $RUN, $STORE: admin writes"
    taskset -c "$TOOL_CPUS" node "$ROOT/bench/admin-writes.mjs" "http://127.0.0.1:$PORT" "$KEY" "$WRITES" \
        >"$OUT/store-writes-$STORE-$RUN.json"
    cat "$OUT/store-writes-$STORE-$RUN.json"
    echo "== run $RUN, $STORE: join storm of $MEMBERS"
    taskset -c "$TOOL_CPUS" "$LOAD" --scenario storm --server "127.0.0.1:$PORT" --admin-key "$KEY" \
        --pid "$SERVER_PID" --members "$MEMBERS" --rounds 3 --json "$OUT/store-storm-$STORE-$RUN.json" | tail -5
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
done
done
