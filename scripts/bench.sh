#!/usr/bin/env bash
# `npm run bench`: Convene vs Janus VideoRoom on this machine, loopback only.
#   1. builds the release binaries,
#   2. the floor: this machine's forwarding ceiling on one core (bench/floor),
#   3. media ladders against both SFUs (each run starts its SFU afresh, pinned to its own
#      core, the load tool on the others): one publisher to N subscribers (audio+video),
#      an M x M meeting (audio+video), audio-only to many; a ladder stops at the first
#      step with loss > 1% or a failed connection,
#   4. the signaling scale run (as many members as the fd limit allows),
#   5. the store: SQLite against PostgreSQL (bench/store.sh), and three nodes on Redis
#      (bench/cluster.sh), and one room of 100,000 members over six nodes (bench/spread.sh),
#   6. a new viewer's first video frame in Chromium (bench/first-frame.mjs),
#   7. bench/REPORT.md and the charts (matplotlib), from the JSON in bench/results/.
# BENCH_QUICK=1: short ladders and a small scale run (a few minutes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/bench/results"
QUICK="${BENCH_QUICK:-0}"

step() { printf '\n==================== %s ====================\n' "$*"; }

step "release build"
cargo build --release -p convene-load -p convene-server -p convene-floor
if ! python3 -c "import matplotlib" 2>/dev/null; then
    python3 -m pip install --quiet -r bench/requirements.txt
fi

if [ "$QUICK" = 1 ]; then
    SECONDS_PER_RUN=3
    FANOUT=(100 199)
    MEETING=(4 8)
    AUDIO=(200 400)
    FLOOR=(300)
    SCALE=2000
else
    SECONDS_PER_RUN=6
    FANOUT=(100 199 400 700 1000 1300)
    MEETING=(8 12 16 20 24)
    AUDIO=(400 800 1600 2400 3200)
    FLOOR=(300 1000)
    SCALE=""
fi
VIDEO_PPS=100

# Every peer connection is a UDP socket in the tool and in the SFU; let both use all the
# file descriptors they may.
HARD_NOFILE="$(ulimit -Hn)"
ulimit -n "$HARD_NOFILE"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
python3 - "$RESULTS/machine.json" "$QUICK" "$SECONDS_PER_RUN" "$HARD_NOFILE" <<'PY'
import json, os, platform, subprocess, sys
out, quick, secs, hard = sys.argv[1:]
def cmd(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
json.dump({"cpus": os.cpu_count(), "cpuModel": cpu, "kernel": platform.release(),
           "janus": (cmd("janus", "--version") or "").splitlines()[0:1],
           "quick": quick == "1", "secondsPerRun": int(secs), "hardNofile": hard,
           "commit": cmd("git", "rev-parse", "--short", "HEAD")}, open(out, "w"), indent=1)
PY

# ok FILE: the run wrote a report with no error and at most 1% loss.
ok() {
    python3 - "$1" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(1)
sys.exit(0 if "error" not in r and r.get("lossPercent", 100) <= 1.0 else 1)
PY
}

# The machine may be shared (a build or browser tests in another checkout): a run next to
# them would measure them too. Before each run, wait until the machine is nearly idle
# (under 20% of one core busy over 2 s): at most 120 s per run and QUIET_WAIT seconds in
# all, so the bench still ends in bounded time. Each report records the other CPU during
# its window ("otherCpuPercent").
QUIET_WAIT="${QUIET_WAIT:-600}"
WAITED=0
busy_percent() {
    python3 - <<'PY'
import time
def busy():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)
b0, t0 = busy(); time.sleep(2); b1, t1 = busy()
import os
print(int(100 * os.cpu_count() * (b1 - b0) / max(t1 - t0, 1)))
PY
}
wait_quiet() {
    local start=$SECONDS busy
    while busy="$(busy_percent)" && [ "$busy" -gt 20 ]; do
        if [ $((SECONDS - start)) -ge 120 ] || [ $((WAITED + SECONDS - start)) -ge "$QUIET_WAIT" ]; then
            echo "    (machine still busy: ${busy}% of a core; running anyway)"
            break
        fi
        [ $((SECONDS - start)) -lt 3 ] && echo "    (machine busy: ${busy}% of a core; waiting)"
        sleep 3
    done
    WAITED=$((WAITED + SECONDS - start))
}

# ladder NAME SFU "flags with {N}" N...: runs each N until the first failing step.
ladder() {
    local name="$1" sfu="$2" flags="$3"; shift 3
    for n in "$@"; do
        local out="$RESULTS/$name-$sfu-$n.json"
        wait_quiet
        echo "--- $name $sfu N=$n"
        # shellcheck disable=SC2086 # flags are words on purpose
        bash bench/run.sh "$sfu" "$out" ${flags//\{N\}/$n} --seconds "$SECONDS_PER_RUN" \
            --pps "$VIDEO_PPS" 2>"$RESULTS/$name-$sfu-$n.log" || true
        tail -n 1 "$RESULTS/$name-$sfu-$n.log" | grep -v '^  ' || true
        if ! ok "$out"; then
            echo "    $name/$sfu: stopping the ladder at N=$n (loss > 1% or failures)"
            break
        fi
    done
}

step "floor: receive, decrypt once, re-encrypt and send per destination, one core"
CORES="$(nproc)"
for n in "${FLOOR[@]}"; do
    wait_quiet
    # 150,000 packets/s in all at most, from one source.
    pps=$((150000 / n))
    PIN=()
    [ "$CORES" -ge 2 ] && PIN=(--relay-cpu $((CORES - 1)) --tool-cpu 0)
    ./target/release/convene-floor --destinations "$n" --pps "$pps" --seconds 5 "${PIN[@]}" \
        --json "$RESULTS/floor-$n.json" 2>&1 | tail -n 1
done

for sfu in convene janus; do
    step "1 publisher (audio+video) -> N subscribers: $sfu"
    ladder fanout "$sfu" "--kind av --publishers 1 --subscribers {N}" "${FANOUT[@]}"
    step "M x M meeting (audio+video): $sfu"
    ladder meeting "$sfu" "--kind av --publishers {N} --subscribers 0" "${MEETING[@]}"
    step "1 publisher (audio only) -> N subscribers: $sfu"
    ladder audio "$sfu" "--kind audio --publishers 1 --subscribers {N}" "${AUDIO[@]}"
done

step "scale: signaling members in one room (hard fd limit: $HARD_NOFILE per process)"
# Each member is one socket in the server and one in this tool, and each process may hold
# at most `ulimit -Hn` fds: 100,000 members cannot fit; leave 1,000 for everything else.
if [ -z "$SCALE" ]; then
    SCALE=$((HARD_NOFILE > 100000 ? 100000 : HARD_NOFILE - 1000))
fi
echo "members: $SCALE (ulimit -Hn = $HARD_NOFILE)"
wait_quiet
timeout -k 5 600 ./target/release/convene-load --spawn ./target/release/convene \
    --members "$SCALE" --concurrency 200 --json "$RESULTS/scale.json" \
    2>"$RESULTS/scale.log" || echo "scale run failed: see bench/results/scale.log"
tail -n 3 "$RESULTS/scale.log" | grep -v '^  ' || true

step "the store: SQLite against PostgreSQL (admin writes, join storms)"
wait_quiet
if [ "$QUICK" = 1 ]; then
    bash bench/store.sh 1000 500 1
else
    bash bench/store.sh 2000 2000 3
fi

step "several nodes: three on Redis and PostgreSQL (removals and listings across nodes)"
wait_quiet
if [ "$QUICK" = 1 ]; then
    bash bench/cluster.sh 150 30 || echo "cluster run failed"
else
    bash bench/cluster.sh 600 90 || echo "cluster run failed"
fi

step "one room across nodes: 100,000 signaling members over six nodes"
wait_quiet
if [ "$QUICK" = 1 ]; then
    bash bench/spread.sh 12000 3 || echo "spread run failed"
else
    bash bench/spread.sh 99999 6 || echo "spread run failed"
fi

step "first frame: a new viewer's first video frame (Chromium, 10 joins)"
node bench/first-frame.mjs 10 >"$RESULTS/first-frame.json" 2>"$RESULTS/first-frame.log" || tail -5 "$RESULTS/first-frame.log"

step "report"
python3 bench/report.py "$RESULTS" bench
echo "wrote bench/REPORT.md"
