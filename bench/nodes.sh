# Sourced by the cluster benchmarks: a throwaway PostgreSQL, Redis and Convene nodes, each
# in a temp dir on a free loopback port, all stopped (and the dir removed) on exit.
#
#   source bench/nodes.sh            # sets TMP, KEY, BIN; needs ROOT
#   start_postgres                   # sets DBURL
#   start_redis                      # sets REDISURL
#   start_node NAME [ENV=VALUE...]   # appends to NODE_PIDS, URLS, ADDRS
#   wait_for_nodes                   # every node answers /healthz
BIN="$ROOT/target/release/convene"
[ -x "$BIN" ] || { echo "$0: build first: cargo build --release -p convene-server -p convene-load" >&2; exit 1; }
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PGBIN/initdb" ] || { echo "$0: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "$0: Redis is not installed (apt-get install redis-server)" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

TMP="$(mktemp -d /tmp/convene-nodes-bench-XXXXXX)"
KEY="bench-admin-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$TMP"
    AS=(runuser -u postgres --)
fi
PIDS=()
NODE_PIDS=()
URLS=()
ADDRS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

start_postgres() {
    local port
    port="$(free_port)"
    "${AS[@]}" "$PGBIN/initdb" -D "$TMP/pg" -U convene -A trust -E UTF8 --locale=C >/dev/null
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$TMP" start >/dev/null
    "${AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U convene convene
    DBURL="postgres://convene@127.0.0.1:$port/convene"
}

start_redis() {
    local port
    port="$(free_port)"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" \
        >"$TMP/redis.log" 2>&1 &
    PIDS+=($!)
    REDISURL="redis://127.0.0.1:$port"
}

start_node() {
    local name="$1" port
    shift
    port="$(free_port)"
    mkdir -p "$TMP/node-$name"
    env CONVENE_ADMIN_KEY="$KEY" CONVENE_LISTEN="127.0.0.1:$port" CONVENE_DATA_DIR="$TMP/node-$name" \
        CONVENE_DATABASE_URL="$DBURL" CONVENE_REDIS_URL="$REDISURL" CONVENE_NODE_ID="$name" \
        CONVENE_MEDIA_PORT=0 CONVENE_MEDIA_IP=127.0.0.1 CONVENE_MAX_CONNECTIONS_PER_IP=0 \
        CONVENE_LOG=warn "$@" "$BIN" serve >"$TMP/node-$name.log" 2>&1 &
    PIDS+=($!)
    NODE_PIDS+=($!)
    URLS+=("http://127.0.0.1:$port")
    ADDRS+=("127.0.0.1:$port")
}

wait_for_nodes() {
    for u in "${URLS[@]}"; do
        for _ in $(seq 100); do
            curl -sf "$u/healthz" >/dev/null && break
            sleep 0.1
        done
    done
    # One renewal round, so every node knows the others.
    sleep 3
}
