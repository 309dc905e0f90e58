#!/usr/bin/env bash
# One media run of convene-load against one SFU, started fresh for the run so its CPU and
# RSS belong to this run alone. Writes the JSON report to OUT (also when the run fails:
# the ladder reads why it stopped from it).
#
#   bench/run.sh convene|janus OUT [convene-load media flags...]
set -uo pipefail
SFU="$1"; OUT="$2"; shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The smoke test runs the debug build; the bench, the release build.
LOAD="${CONVENE_LOAD_BIN:-$ROOT/target/release/convene-load}"
# Every run ends by itself; this is only the backstop for a wedged one.
RUN_TIMEOUT="${RUN_TIMEOUT:-240}"
# The SFU and the tool each get cores of their own (taskset), so the SFU's CPU is one
# core's worth at most and the tool never steals from it: SFU_CPUS / TOOL_CPUS, by
# default the last core for the SFU and the others for the tool (nothing pinned on a
# one-core machine).
CORES="$(nproc)"
if [ "$CORES" -ge 2 ]; then
    SFU_CPUS="${SFU_CPUS:-$((CORES - 1))}"
    TOOL_CPUS="${TOOL_CPUS:-0-$((CORES - 2))}"
    PIN_TOOL=(taskset -c "$TOOL_CPUS")
    PIN_SFU=(taskset -c "$SFU_CPUS")
    SFU_CORES=$(python3 - "$SFU_CPUS" <<'PY2'
import sys
n = 0
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    n += int(b or a) - int(a) + 1
print(n)
PY2
)
else
    PIN_TOOL=()
    PIN_SFU=()
    SFU_CORES=1
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$SFU" in
convene)
    # One media worker per core the SFU has.
    PIN_ARGS=()
    [ ${#PIN_SFU[@]} -gt 0 ] && PIN_ARGS=(--spawn-cpus "$SFU_CPUS")
    timeout -k 5 "$RUN_TIMEOUT" "${PIN_TOOL[@]}" "$LOAD" --scenario media \
        --spawn "${CONVENE_BIN:-$ROOT/target/release/convene}" "${PIN_ARGS[@]}" \
        --spawn-media-workers "$SFU_CORES" --json "$OUT" "$@"
    ;;
janus)
    DIR="$(mktemp -d /tmp/convene-bench-janus.XXXXXX)"
    PORT="$(free_port)"
    "${PIN_SFU[@]}" bash "$ROOT/bench/janus.sh" "$DIR" "$PORT" >"$DIR/janus.log" 2>&1 &
    JPID=$!
    # Janus goes with this script, however it ends.
    trap 'kill "$JPID" 2>/dev/null; sleep 0.5; kill -9 "$JPID" 2>/dev/null; rm -rf "$DIR"' EXIT
    for _ in $(seq 100); do
        curl -s -m 1 -o /dev/null -X POST -d '{"janus":"info","transaction":"up"}' \
            "http://127.0.0.1:$PORT/janus" && break
        sleep 0.1
    done
    timeout -k 5 "$RUN_TIMEOUT" "${PIN_TOOL[@]}" "$LOAD" --scenario media --target janus \
        --janus-url "http://127.0.0.1:$PORT/janus" --pid "$JPID" --json "$OUT" "$@"
    ;;
*)
    echo "run.sh: unknown SFU '$SFU' (convene or janus)" >&2
    exit 2
    ;;
esac
