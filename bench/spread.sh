#!/usr/bin/env bash
# One room spread over several nodes: MEMBERS signaling members (default 100,000) join
# one room through NODES nodes (release builds on one Redis and one PostgreSQL, started
# here), one convene-load process per node (each process, server or tool, holds one
# socket per member it serves, and the open-file limit here is 20,000 per process).
# The room's home is the first node (the host joins there first). Reports: all joined
# or not, the nodes' RSS per member, and one chat message to everyone (p50, p99, last).
# Writes bench/results/spread.json.
#
#   bench/spread.sh [MEMBERS=99999] [NODES=6]   (with the host: 100,000 in the room, the
#   most one room's roster holds)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEMBERS="${1:-99999}"
NODES="${2:-6}"
LOAD="$ROOT/target/release/convene-load"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
[ -x "$LOAD" ] || { echo "spread.sh: build first: cargo build --release -p convene-server -p convene-load" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
PER=$(((MEMBERS + NODES - 1) / NODES))
if [ $((PER + 1000)) -gt "$(ulimit -n)" ]; then
    echo "spread.sh: $PER members per node do not fit in $(ulimit -n) open files: use more nodes" >&2
    exit 1
fi
source "$ROOT/bench/nodes.sh"
start_postgres
start_redis
for i in $(seq 0 $((NODES - 1))); do
    start_node "n$i"
done
wait_for_nodes
ROOM="spread-$$"
"$LOAD" --scenario setup --server "${ADDRS[0]}" --admin-key "$KEY" --room "$ROOM" --members "$MEMBERS"
rss() {
    local total=0 p
    for p in "${NODE_PIDS[@]}"; do
        total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status") * 1024))
    done
    echo "$total"
}
RSS_BEFORE="$(rss)"
BARRIER="$TMP/barrier"
mkdir -p "$BARRIER"
PARTS=()
START="$(date +%s.%N)"
for i in $(seq 0 $((NODES - 1))); do
    FIRST=$((i * PER))
    COUNT=$((MEMBERS - FIRST < PER ? MEMBERS - FIRST : PER))
    HOST=()
    if [ "$i" -eq 0 ]; then HOST=(--host-for "$MEMBERS"); fi
    "$LOAD" --scenario part --server "${ADDRS[$i]}" --admin-key "$KEY" --room "$ROOM" \
        --first "$FIRST" --members "$COUNT" --concurrency 100 --barrier "$BARRIER" \
        --json "$TMP/part-$i.json" "${HOST[@]}" 2>"$TMP/part-$i.log" &
    PARTS+=($!)
    # The host first, so that the room's home is node n0.
    if [ "$i" -eq 0 ]; then sleep 2; fi
done
# RSS once every part has joined all it could (before the message).
for _ in $(seq 6000); do
    [ "$(ls "$BARRIER" | grep -c '^joined-')" -ge "$NODES" ] && break
    sleep 0.1
done
JOINED_AT="$(date +%s.%N)"
RSS_AFTER="$(rss)"
PER_NODE=()
for p in "${NODE_PIDS[@]}"; do PER_NODE+=("$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$p/status")"); done
STATUS=0
for p in "${PARTS[@]}"; do wait "$p" || STATUS=1; done
for i in $(seq 0 $((NODES - 1))); do tail -3 "$TMP/part-$i.log" >&2 || true; done
python3 - "$OUT/spread.json" "$MEMBERS" "$NODES" "$RSS_BEFORE" "$RSS_AFTER" "$START" "$JOINED_AT" \
    "${PER_NODE[*]}" "$TMP"/part-*.json <<'PY'
import json, subprocess, sys, time
out, members, nodes, before, after, start, joined_at, per_node = sys.argv[1:9]
parts = [json.load(open(p)) for p in sys.argv[9:]]
fan = sorted(x for p in parts for x in p["fanoutMs"])
expected = sum(p["expected"] for p in parts)
joined = sum(p["joined"] for p in parts)
def pct(v, q):
    return round(v[min(len(v) - 1, round(q / 100 * (len(v) - 1)))], 1) if v else None
d = {
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "date": time.strftime("%Y-%m-%d", time.gmtime()),
    "members": int(members), "nodes": int(nodes), "toolProcesses": len(parts),
    "joined": joined, "joinFailures": sum(p["joinFailures"] for p in parts),
    "joinAllSeconds": round(float(joined_at) - float(start), 1),
    "joinLatencyMsP99": max(p["joinLatencyMs"]["p99"] for p in parts),
    "rssBytes": {"before": int(before), "after": int(after), "perNodeAfter": [int(x) for x in per_node.split()]},
    "rssPerMemberBytes": round((int(after) - int(before)) / joined) if joined else None,
    "messageReached": len(fan), "messageExpected": expected,
    "messageFanoutMs": {"p50": pct(fan, 50), "p99": pct(fan, 99), "last": fan[-1] if fan else None},
}
json.dump(d, open(out, "w"), indent=1)
print(json.dumps(d))
PY
exit "$STATUS"
