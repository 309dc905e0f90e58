#!/usr/bin/env python3
"""Writes bench/REPORT.md and one chart per media scenario (matplotlib, SVG) from the
JSON reports scripts/bench.sh left in bench/results/. Usage: report.py RESULTS_DIR OUT_DIR"""

import glob
import json
import os
import re
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SCENARIOS = [
    ("fanout", "1 publisher (audio + video) -> N subscribers", "N subscribers"),
    ("meeting", "M x M meeting (audio + video, everyone publishes and receives all others)",
     "M participants"),
    ("audio", "1 publisher (audio only, Opus-sized 120 B at 50 packets/s) -> N subscribers",
     "N subscribers"),
]
SFUS = ["convene", "janus"]
COLORS = {"convene": "#1f77b4", "janus": "#d62728"}


def load(results):
    runs = {}
    for path in glob.glob(os.path.join(results, "*-*-*.json")):
        m = re.match(r"(\w+)-(convene|janus)-(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        try:
            r = json.load(open(path))
        except (OSError, ValueError):
            continue
        runs.setdefault(m.group(1), {}).setdefault(m.group(2), {})[int(m.group(3))] = r
    # A run the timeout killed leaves a log but no JSON: note it as failed.
    for path in glob.glob(os.path.join(results, "*-*-*.log")):
        m = re.match(r"(\w+)-(convene|janus)-(\d+)\.log$", os.path.basename(path))
        if m:
            by_n = runs.setdefault(m.group(1), {}).setdefault(m.group(2), {})
            by_n.setdefault(int(m.group(3)), {"error": "no report (killed by the run timeout?)"})
    return runs


def load_floor(results):
    floors = []
    for path in sorted(glob.glob(os.path.join(results, "floor-*.json"))):
        try:
            floors.append(json.load(open(path)))
        except (OSError, ValueError):
            pass
    return floors


def passed(r):
    return r is not None and "error" not in r and r.get("lossPercent", 100) <= 1.0


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float) and digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}" if isinstance(v, (int, float)) else str(v)


def mib(b):
    return None if b is None else b / 1048576.0


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def per_core(r):
    """Packets received per second of one SFU core: received/s over CPU share."""
    cpu, pps = (r or {}).get("serverCpuPercent"), (r or {}).get("receivedPerSecond")
    if not cpu or not pps:
        return None
    return pps * 100.0 / cpu


def cpu_per_kpps(r):
    cpu, pps = (r or {}).get("serverCpuPercent"), (r or {}).get("receivedPerSecond")
    if cpu is None or not pps:
        return None
    return cpu / (pps / 1000.0)


def scenario_ns(by_sfu):
    return sorted({n for sfu in SFUS for n in by_sfu.get(sfu, {})})


def table(by_sfu, xlabel):
    ns = scenario_ns(by_sfu)
    out = [
        f"| {xlabel} | received/s C | received/s J | loss % C | loss % J | SFU CPU % C | "
        f"SFU CPU % J | packets/s per SFU core C / J (C/J) | RSS MiB C / J | UDP sockets C / J | "
        f"tool / other CPU % C; J |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in ns:
        c, j = by_sfu.get("convene", {}).get(n), by_sfu.get("janus", {}).get(n)
        cell = lambda r, k, d=0: "-" if r is None else (  # noqa: E731
            "fail" if r.get(k) is None and "error" in r else fmt(r.get(k), d))
        pc, pj = per_core(c), per_core(j)
        busy = any((r or {}).get("otherCpuPercent", 0) > 25 for r in (c, j))
        out.append(
            f"| {n}{' (busy)' if busy else ''} | {cell(c, 'receivedPerSecond')} | "
            f"{cell(j, 'receivedPerSecond')} | {cell(c, 'lossPercent', 2)} | "
            f"{cell(j, 'lossPercent', 2)} | {cell(c, 'serverCpuPercent', 1)} | "
            f"{cell(j, 'serverCpuPercent', 1)} | {fmt(pc)} / {fmt(pj)} ({ratio(pc, pj)}) | "
            f"{fmt(mib((c or {}).get('serverRssBytes')), 1)} / "
            f"{fmt(mib((j or {}).get('serverRssBytes')), 1)} | "
            f"{fmt((c or {}).get('serverUdpSockets'))} / {fmt((j or {}).get('serverUdpSockets'))} | "
            f"{fmt((c or {}).get('loadToolCpuPercent'), 0)} / "
            f"{fmt((c or {}).get('otherCpuPercent'), 0)}; "
            f"{fmt((j or {}).get('loadToolCpuPercent'), 0)} / "
            f"{fmt((j or {}).get('otherCpuPercent'), 0)} |")
    out += [
        "",
        f"| {xlabel} | latency p50 ms C / J | p95 C / J | p99 C / J | first packet p50 ms "
        f"C / J | receivers with media C / J |",
        "|---|---|---|---|---|---|",
    ]
    for n in ns:
        c = by_sfu.get("convene", {}).get(n) or {}
        j = by_sfu.get("janus", {}).get(n) or {}
        lat = lambda r, p: "-" if not r.get("packetsReceived") else fmt(  # noqa: E731
            (r.get("latencyMs") or {}).get(p), 2)
        first = lambda r: fmt((r.get("timeToFirstMediaMs") or {}).get("p50"), 0)  # noqa: E731
        rec = lambda r: f"{r.get('receiversWithMedia', '-')}/{r.get('receivers', '-')}"  # noqa: E731
        out.append(
            f"| {n} | {lat(c, 'p50')} / {lat(j, 'p50')} | {lat(c, 'p95')} / {lat(j, 'p95')} | "
            f"{lat(c, 'p99')} / {lat(j, 'p99')} | {first(c)} / {first(j)} | "
            f"{rec(c)} / {rec(j)} |")
    return "\n".join(out)


def limits(by_sfu, xlabel):
    lines = []
    for sfu in SFUS:
        runs = by_sfu.get(sfu, {})
        if not runs:
            lines.append(f"- {sfu}: not run")
            continue
        ok = [n for n in sorted(runs) if passed(runs[n])]
        bad = [n for n in sorted(runs) if not passed(runs[n])]
        if bad:
            r = runs[bad[0]]
            why = r.get("error") or f"loss {r.get('lossPercent')}%"
            used = [r.get(k) for k in ("serverCpuPercent", "loadToolCpuPercent",
                                       "otherCpuPercent")]
            if None not in used:
                why += (f" (CPU: SFU {used[0]:.0f}% + tool {used[1]:.0f}% + other "
                        f"{used[2]:.0f}%)")
            lines.append(f"- {sfu}: clean up to {xlabel.split()[0]} = {ok[-1] if ok else 'none'}; "
                         f"at {bad[0]}: {why}")
        else:
            lines.append(f"- {sfu}: no loss above 1% up to the ladder's top, "
                         f"{xlabel.split()[0]} = {ok[-1]}")
    return "\n".join(lines)


def best(runs, f):
    vals = [(f(r), n) for n, r in runs.items() if passed(r) and f(r) is not None]
    return max(vals) if vals else (None, None)


def chart(path, title, xlabel, by_sfu):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [("packets received per second", lambda r: r.get("receivedPerSecond")),
              ("SFU CPU % (100 = one core)", lambda r: r.get("serverCpuPercent")),
              ("packets/s per SFU core", per_core)]
    for ax, (label, f) in zip(axes, panels):
        for sfu in SFUS:
            pts = [(n, f(r), passed(r)) for n, r in sorted(by_sfu.get(sfu, {}).items())
                   if f(r) is not None]
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            ax.plot(xs, ys, color=COLORS[sfu], label=sfu, linewidth=2)
            for x, y, ok in pts:
                ax.plot([x], [y], "o", color=COLORS[sfu],
                        markerfacecolor=COLORS[sfu] if ok else "white")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(True, color="#eeeeee")
        ax.set_ylim(bottom=0)
        ax.ticklabel_format(style="plain", axis="y")
    axes[0].legend(title="hollow: loss > 1%", fontsize=8, title_fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def bars(runs, floors):
    """The media engine's bars, from this run's numbers."""
    md = ["## Bars", ""]
    floor = max((f.get("packetsPerCoreSecond") or 0 for f in floors), default=0) or None
    fan = runs.get("fanout", {})
    c_best, c_n = best(fan.get("convene", {}), per_core)
    md += ["| bar | goal | measured | met |", "|---|---|---|---|"]

    def row(name, goal, measured, ok):
        md.append(f"| {name} | {goal} | {measured} | {'yes' if ok else 'no'} |")

    row("1 -> N (a+v), 0 % loss: packets/s per SFU core", "at least 150,000",
        f"{fmt(c_best)} (N = {c_n})" if c_best else "-", bool(c_best and c_best >= 150000))
    j_best, j_n = best(fan.get("janus", {}), per_core)
    row("... per CPU-second vs Janus (best of each ladder)", "at least 2x",
        f"{ratio(c_best, j_best)} (Janus {fmt(j_best)} at N = {j_n})",
        bool(c_best and j_best and c_best / j_best >= 2))
    row("... as a fraction of the measured floor", "at least 0.5",
        f"{ratio(c_best, floor)} (floor {fmt(floor)})",
        bool(c_best and floor and c_best / floor >= 0.5))
    socks = [(n, r.get("serverUdpSockets")) for n, r in fan.get("convene", {}).items()
             if r.get("serverUdpSockets") is not None and n >= 199]
    if socks:
        n, s = min(socks)
        row("a 200-member call holds one UDP socket per worker", "1 per worker",
            f"{s} sockets with {n + 1} members (SFU pinned to one core: 1 worker)", s == 1)
    meet = runs.get("meeting", {})
    mc, mj = meet.get("convene", {}), meet.get("janus", {})
    both = [n for n in sorted(set(mc) & set(mj)) if passed(mc[n]) and passed(mj[n])]
    if both:
        n = both[-1]
        r = ratio(per_core(mc[n]), per_core(mj[n]))
        row(f"M x M at M = {n}: per CPU-second vs Janus", "at least 2x", r,
            r != "-" and float(r) >= 2)
        pc_, pj_ = mc[n]["latencyMs"]["p99"], mj[n]["latencyMs"]["p99"]
        row(f"M x M at M = {n}: p99 latency vs Janus", "no higher",
            f"{pc_} ms / {pj_} ms", pc_ <= pj_)
    aud = runs.get("audio", {})
    a_best, _ = best(aud.get("convene", {}), per_core)
    aj_best, _ = best(aud.get("janus", {}), per_core)
    row("audio-only ladder: per CPU-second vs Janus", "at least 2x",
        ratio(a_best, aj_best), bool(a_best and aj_best and a_best / aj_best >= 2))
    md.append("")
    return md


def floor_section(floors):
    if not floors:
        return []
    md = ["## The floor: this machine's forwarding ceiling", "",
          "`convene-floor` (bench/floor) does only the work no SFU can skip, on one core: "
          "receive SRTP (AEAD_AES_128_GCM, 1000-byte payloads), decrypt once, and per "
          "destination rewrite the SSRC, encrypt with that destination's own key and send, "
          "batched (recvmmsg / sendmmsg), to loopback addresses a sink on the other core "
          "drains. No ICE, DTLS, interceptors or signaling.", "",
          "| destinations | source packets/s | forwarded/s | relay CPU % | packets/s per core |",
          "|---|---|---|---|---|"]
    for f in floors:
        md.append(f"| {f['destinations']} | {f['sourcePps']} | {fmt(f['forwardedPerSecond'])} | "
                  f"{f['relayCpuPercent']} | {fmt(f['packetsPerCoreSecond'])} |")
    md.append("")
    return md


def main():
    results, out_dir = sys.argv[1], sys.argv[2]
    runs = load(results)
    floors = load_floor(results)
    machine = {}
    try:
        machine = json.load(open(os.path.join(results, "machine.json")))
    except (OSError, ValueError):
        pass
    md = ["# Benchmark: Convene vs Janus VideoRoom", ""]
    md.append(
        f"Generated by `npm run bench` ({'BENCH_QUICK=1, ' if machine.get('quick') else ''}"
        f"{machine.get('secondsPerRun', '?')} s measured per run) on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {machine.get('commit', '?')}: "
        f"{machine.get('cpus', '?')} CPUs ({machine.get('cpuModel', '?')}), Linux "
        f"{machine.get('kernel', '?')}, {' '.join(machine.get('janus') or ['Janus'])} "
        "(Debian package). Raw JSON per run: `bench/results/`.")
    md += ["", "How it is measured (the same for both SFUs):", "",
           "- The SFU and the load tool run on different cores (`taskset`: the SFU on the "
           "last core, the tool on the others), so an SFU's CPU % is its own core's and the "
           "tool never competes with it. Convene runs one media worker per core it has.",
           "- `convene-load` drives light client peers: full-ICE webrtc-rs (`rtc` 0.21.1) "
           "state machines, many per thread on one socket each (every peer has its own "
           "loopback address); receivers decrypt media themselves once checked against rtc. "
           "Publishers send synthetic RTP (VP8: 1000-byte payloads at 100 packets/s; Opus: "
           "120-byte payloads at 50/s) carrying an index and a send timestamp. Convene is "
           "joined over its WebSocket signaling, Janus over its HTTP long-poll API "
           "(`janus.plugin.videoroom`, one session per member, `joinandconfigure` / "
           "subscriber `join` + `start`). Peers and counting (`load/src/pool`, "
           "`load/src/media.rs`) are the same for both.",
           "- Received/s, loss and latency count only packets sent inside the measured "
           "window, after every receiver got its first packet; loss = 1 - received / "
           "(sent x receivers per packet). Latency is one-way send-to-receive on one clock "
           "(loopback). First packet: from a subscriber starting to join to its first packet.",
           "- SFU CPU % is utime+stime of the SFU process over the window (/proc, 100 = one "
           "core); packets/s per SFU core = received/s / (CPU % / 100); RSS and UDP sockets "
           "(its file descriptors found in /proc/net/udp) at the window's end. Each run "
           "starts a fresh SFU process.",
           "- Janus runs with a generated loopback-only config (`bench/janus.sh`: HTTP "
           "transport on 127.0.0.1, VideoRoom only, no event handlers). Janus never gathers "
           "ICE candidates on a loopback interface, so it runs with a small LD_PRELOAD "
           "shim (`bench/janus-lo-shim.c`) that clears IFF_LOOPBACK on `lo` in getifaddrs(); "
           "Janus then offers 127.0.0.1 candidates. No other change.",
           "- \"(busy)\": other processes used more than 25% of a core during that run; "
           "treat its latency and CPU figures with care.",
           "- C = Convene, J = Janus.", ""]
    md += bars(runs, floors)
    md += floor_section(floors)
    for name, title, xlabel in SCENARIOS:
        by_sfu = runs.get(name)
        if not by_sfu:
            continue
        chart(os.path.join(out_dir, f"chart-{name}.svg"), title, xlabel, by_sfu)
        md += [f"## {title}", "", f"![{name}](chart-{name}.svg)", "",
               table(by_sfu, xlabel), "", "Where the ladder stopped:", "",
               limits(by_sfu, xlabel), ""]
    md += scale_section(results, machine)
    md += store_section(results)
    md += cluster_section(results)
    md += spread_section(results)
    md += first_frame_section(results)
    open(os.path.join(out_dir, "REPORT.md"), "w").write("\n".join(md) + "\n")


def scale_section(results, machine):
    md = ["## Scale: signaling members in one room (Convene only)", ""]
    try:
        r = json.load(open(os.path.join(results, "scale.json")))
    except (OSError, ValueError):
        return md + ["The scale run left no report (see `bench/results/scale.log`).", ""]
    hard = machine.get("hardNofile", "?")
    per = r.get("serverRssPerMemberBytes")
    md += [
        f"Goal: 100,000 members on one node. Run here: **{r['members']:,} members** "
        f"({r['joined']:,} joined, {r['joinFailures']} failed) in {r['joinAllSeconds']:.1f} s.",
        "",
        f"Why not 100,000: the hard limit on open files here is `ulimit -Hn` = {hard} per "
        "process, and each member holds one socket in the server and one in the client "
        "process. Splitting the clients over several processes would not help: the server "
        f"itself cannot hold more than {hard} sockets, so about {hard} members (minus the "
        "server's own files) is the ceiling on this machine without raising the limit.",
        "",
        "| metric | value |", "|---|---|",
        f"| join latency p50 / p95 / p99 | {r['joinLatencyMs']['p50']} / "
        f"{r['joinLatencyMs']['p95']} / {r['joinLatencyMs']['p99']} ms |",
        f"| one chat message to all: reached | {r['messageReached']:,} |",
        f"| fan-out latency p50 / p95 / p99 / last | {r['messageFanoutMs']['p50']} / "
        f"{r['messageFanoutMs'].get('p95', '-')} / {r['messageFanoutMs']['p99']} / "
        f"{r['messageFanoutMs']['all']} ms |",
        f"| server RSS before / after joins | {fmt(mib(r['serverRssBytes']['before']), 1)} / "
        f"{fmt(mib(r['serverRssBytes']['after']), 1)} MiB |",
        f"| server RSS per member | {fmt(per / 1024 if per else None, 1)} KiB |",
        f"| server CPU during joins | {fmt(r.get('serverCpuSecondsDuringJoins'), 1)} s |",
        "",
    ]
    if per:
        md.append(f"At {per / 1024:.1f} KiB per member, 100,000 members would need about "
                  f"{per * 100000 / 1048576 / 1024:.1f} GiB of server memory: memory is not "
                  "the limit here, file descriptors are.")
        md.append("")
    return md


def cluster_section(results):
    """Three nodes on Redis and PostgreSQL (bench/cluster.sh)."""
    md = ["## Several nodes: admin changes and listings across nodes (Convene only)", ""]
    try:
        d = json.load(open(os.path.join(results, "cluster.json")))
    except (OSError, ValueError):
        return md + ["No cluster run (`bench/cluster.sh` writes `cluster.json`).", ""]
    md += [f"Run by `bench/cluster.sh` at commit {d['commit']} on {d['date']}: {d['nodes']} "
           "release nodes on one Redis and one PostgreSQL database, all on this machine. "
           f"{d['members']:,} members joined one room through the nodes in turn "
           f"({fmt(d['joinSeconds'], 2)} s, one at a time); each listing below named all "
           f"{d['membersListed']:,}. A removal is timed from sending the roster PATCH to "
           "the member's socket reading `left {reason: removed}`; cross-node removals go "
           "through the other node's notice on Redis. "
           f"Removals that never arrived: {d['removalsNotArrived']}.", "",
           "| | count | p50 | p90 | p99 |", "|---|---|---|---|---|"]
    rows = [("Removal, member on the same node", d["removalMs"]["sameNode"]),
            ("Removal, member on another node", d["removalMs"]["crossNode"]),
            ("`GET /v1/sessions` (asks every node)", d["listingsMs"]["sessions"]),
            ("`GET /v1/rooms/{id}/members` (asks every node)", d["listingsMs"]["members"])]
    for name, s in rows:
        md.append(f"| {name} | {s['n']} | {fmt(s['p50'], 1)} ms | {fmt(s['p90'], 1)} ms | "
                  f"{fmt(s['p99'], 1)} ms |")
    md.append("")
    return md


def spread_section(results):
    """One room spread over several nodes (bench/spread.sh)."""
    md = ["## One room across nodes: signaling members in one room (Convene only)", ""]
    try:
        d = json.load(open(os.path.join(results, "spread.json")))
    except (OSError, ValueError):
        return md + ["No spread run (`bench/spread.sh` writes `spread.json`).", ""]
    room = d["joined"] + 1
    per_node = ", ".join(f"{b / 2**20:,.0f}" for b in d["rssBytes"]["perNodeAfter"])
    md += [f"Run by `bench/spread.sh` at commit {d['commit']} on {d['date']}: {d['nodes']} "
           "release nodes on one Redis and one PostgreSQL database and "
           f"{d['toolProcesses']} load-tool processes (one per node, each holding the sockets of "
           "the members it joins), all on this machine's cores. The room's home is the first "
           "node; the others forward their members' joins and messages to it and fan its "
           "frames out to their sockets (one copy per node on Redis). The message is sent "
           "as soon as the session counts every member; the room's audience count then goes "
           "out every members / 10,000 s (every 10 s at 100,000), not every second.", "",
           "| | value | goal |", "|---|---|---|",
           f"| Members in the room (the host included) | {room:,} joined, "
           f"{d['joinFailures']} failed | 100,000, 0 failed |",
           f"| Time for all to join | {fmt(d['joinAllSeconds'], 1)} s (join p99 "
           f"{fmt(d['joinLatencyMsP99'] / 1000, 1)} s) | |",
           f"| Server RSS per member (all nodes) | {d['rssPerMemberBytes'] / 1024:.1f} KiB | "
           "at most 16 KiB |",
           f"| One message to all: p50 / p99 / last | {fmt(d['messageFanoutMs']['p50'], 0)} / "
           f"{fmt(d['messageFanoutMs']['p99'], 0)} / {fmt(d['messageFanoutMs']['last'], 0)} ms "
           f"({d['messageReached']:,} of {d['messageExpected']:,} reached) | p99 under 1 s |",
           "", f"RSS per node after the joins (MiB, the home first): {per_node}.", ""]
    return md


def store_section(results):
    """SQLite against PostgreSQL (bench/store.sh): medians over its runs."""
    md = ["## The store: SQLite and PostgreSQL (Convene only)", ""]
    try:
        meta = json.load(open(os.path.join(results, "store-meta.json")))
    except (OSError, ValueError):
        return md + ["No store run (`bench/store.sh` writes `store-*.json`).", ""]
    def median(values):
        v = sorted(x for x in values if x is not None)
        return v[len(v) // 2] if v else None
    def runs(kind, store):
        out = []
        for i in range(1, meta["runs"] + 1):
            try:
                out.append(json.load(open(os.path.join(results, f"store-{kind}-{store}-{i}.json"))))
            except (OSError, ValueError):
                pass
        return out
    md += [f"Run by `bench/store.sh` at commit {meta['commit']} on {meta['date']}: a fresh "
           "release server on the last core for each store and each run (the tools and "
           "PostgreSQL on the others), PostgreSQL "
           "a throwaway local cluster. Medians over "
           f"{meta['runs']} runs.", "",
           f"- Admin writes: {meta['writes']:,} PATCHes of room attributes from 20 writers at "
           "once, on one room (each must read the latest version: they serialize on it) and "
           "spread over 20 rooms; the rooms' versions must count every write (none lost).",
           f"- Join storm: {meta['members']:,} members joining one room at once, 200 in "
           "flight, 3 rounds per run; each join is one admission read of the store.", "",
           "| | writes/s, one room | p99 | writes/s, 20 rooms | p99 | storm round | join p99 |",
           "|---|---|---|---|---|---|---|"]
    for store in ("sqlite", "postgres"):
        writes = runs("writes", store)
        storms = runs("storm", store)
        def w(name, key):
            vals = [next((r for r in run if r["run"] == name), {}) for run in writes]
            if key == "p99":
                return median([v.get("latencyMs", {}).get("p99") for v in vals])
            return median([v.get(key) for v in vals])
        rounds = [r for s in storms for r in s.get("rounds", [])]
        md.append(
            f"| {'SQLite' if store == 'sqlite' else 'PostgreSQL'} | {fmt(w('one-room', 'writesPerSecond'), 0)} | "
            f"{fmt(w('one-room', 'p99'), 0)} ms | {fmt(w('twenty-rooms', 'writesPerSecond'), 0)} | "
            f"{fmt(w('twenty-rooms', 'p99'), 0)} ms | "
            f"{fmt(median([r['seconds'] for r in rounds]), 2)} s | "
            f"{fmt(median([r['joinLatencyMs']['p99'] for r in rounds]), 0)} ms |")
    md += ["", "PostgreSQL's writes cost round trips that SQLite's (in the process) do not: "
           "BEGIN, the row-locked read, the write with its outbox event, COMMIT. Every "
           "event-writing transaction holds the outbox lock from its event to its commit "
           "(so webhook events are read in commit order), which is what limits writes "
           "spread over rooms. Its reads run on a pool of 16 connections instead of two "
           "reader threads.", ""]
    return md


def first_frame_section(results):
    """bench/first-frame.mjs: how soon a new viewer sees the publisher."""
    md = ["## First frame: a new viewer in Chromium (Convene only)", ""]
    try:
        r = json.load(open(os.path.join(results, "first-frame.json")))
    except (OSError, ValueError):
        return md + ["No first-frame run (`node bench/first-frame.mjs` writes it).", ""]
    m = r["medianMs"]
    frames = sorted(run["firstFrame"] for run in r["runs"])
    md += [f"Goal: under 1 s from the page opening to the first frame, on loopback. Measured "
           f"by `bench/first-frame.mjs` at commit {r.get('commit', '?')}: a release server, "
           "one publisher (the join page, Chromium's fake camera), then "
           f"{r['joins']} receive-only viewers opening their invite links one after another, "
           "each in a fresh browser context (nothing cached). Milliseconds from the viewer "
           "page's navigation start, medians:", "",
           "| signaling socket open | `joined` | receiving connection up | first frame shown |",
           "|---|---|---|---|",
           f"| {m['socketOpen']} | {m['joined']} | {m['pcConnected']} | **{m['firstFrame']}** |",
           "", f"First frame, each join (sorted): {', '.join(str(f) for f in frames)} ms. "
           "Before the socket opens, the page loads its scripts and compiles the SDK's wasm.",
           ""]
    return md


if __name__ == "__main__":
    main()
