#!/usr/bin/env python3
"""Writes bench/REPORT.md and one SVG chart per media scenario from the JSON reports that
scripts/bench.sh left in bench/results/. Standard library only (no plotting package is
needed on a bench machine). Usage: report.py RESULTS_DIR OUT_DIR"""

import glob
import json
import os
import re
import sys
import time

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


def cpu_per_kpps(r):
    cpu, pps = r.get("serverCpuPercent"), r.get("receivedPerSecond")
    if cpu is None or not pps:
        return None
    return cpu / (pps / 1000.0)


def scenario_ns(by_sfu):
    return sorted({n for sfu in SFUS for n in by_sfu.get(sfu, {})})


def table(name, by_sfu, xlabel):
    ns = scenario_ns(by_sfu)
    out = [
        f"| {xlabel} | received/s C | received/s J | loss % C | loss % J | server CPU % C | "
        f"server CPU % J | CPU per 1k pkt/s C / J | RSS MiB C | RSS MiB J | "
        f"tool / other CPU % C; J |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in ns:
        c, j = by_sfu.get("convene", {}).get(n), by_sfu.get("janus", {}).get(n)
        cell = lambda r, k, d=0: "-" if r is None else (  # noqa: E731
            "fail" if r.get(k) is None and "error" in r else fmt(r.get(k), d))
        ck = cpu_per_kpps(c) if c else None
        jk = cpu_per_kpps(j) if j else None
        busy = any((r or {}).get("otherCpuPercent", 0) > 25 for r in (c, j))
        out.append(
            f"| {n}{' (busy)' if busy else ''} | {cell(c, 'receivedPerSecond')} | {cell(j, 'receivedPerSecond')} | "
            f"{cell(c, 'lossPercent', 2)} | {cell(j, 'lossPercent', 2)} | "
            f"{cell(c, 'serverCpuPercent', 1)} | {cell(j, 'serverCpuPercent', 1)} | "
            f"{fmt(ck, 2)} / {fmt(jk, 2)} (C/J {ratio(ck, jk)}) | "
            f"{fmt(mib((c or {}).get('serverRssBytes')), 1)} | "
            f"{fmt(mib((j or {}).get('serverRssBytes')), 1)} | "
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
                        f"{used[2]:.0f}% of {100 * (os.cpu_count() or 1)}%)")
            lines.append(f"- {sfu}: clean up to {xlabel.split()[0]} = {ok[-1] if ok else 'none'}; "
                         f"at {bad[0]}: {why}")
        else:
            lines.append(f"- {sfu}: no loss above 1% up to the ladder's top, "
                         f"{xlabel.split()[0]} = {ok[-1]}")
    return "\n".join(lines)


def headline(by_sfu):
    """Ratios at the largest N both SFUs passed."""
    c, j = by_sfu.get("convene", {}), by_sfu.get("janus", {})
    both = [n for n in sorted(set(c) & set(j)) if passed(c[n]) and passed(j[n])]
    if not both:
        return None
    n = both[-1]
    rc, rj = c[n], j[n]
    return n, {
        "CPU %": (rc.get("serverCpuPercent"), rj.get("serverCpuPercent")),
        "CPU per 1k packets/s": (cpu_per_kpps(rc), cpu_per_kpps(rj)),
        "RSS MiB": (mib(rc.get("serverRssBytes")), mib(rj.get("serverRssBytes"))),
        "latency p50 ms": (rc["latencyMs"]["p50"], rj["latencyMs"]["p50"]),
        "latency p99 ms": (rc["latencyMs"]["p99"], rj["latencyMs"]["p99"]),
        "received/s": (rc.get("receivedPerSecond"), rj.get("receivedPerSecond")),
    }


# ---------------------------------------------------------------- SVG charts

def nice_max(v):
    if v <= 0:
        return 1
    mag = 10 ** (len(str(int(v))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def panel(x0, y0, w, h, title, xlabel, series, key):
    """One line chart: series = {sfu: [(n, run)]}, y = run[key]."""
    pts = {s: [(n, r.get(key)) for n, r in runs if r.get(key) is not None]
           for s, runs in series.items()}
    xs = [n for p in pts.values() for n, _ in p] or [1]
    ys = [v for p in pts.values() for _, v in p] or [1]
    xmax, ymax = nice_max(max(xs)), nice_max(max(ys))
    L, B, T, R = 64, 40, 28, 12
    pw, ph = w - L - R, h - T - B
    sx = lambda x: x0 + L + pw * x / xmax  # noqa: E731
    sy = lambda y: y0 + T + ph * (1 - y / ymax)  # noqa: E731
    e = [f'<text x="{x0 + w / 2}" y="{y0 + 18}" text-anchor="middle" '
         f'font-weight="bold">{title}</text>',
         f'<rect x="{x0 + L}" y="{y0 + T}" width="{pw}" height="{ph}" fill="none" '
         f'stroke="#999"/>']
    for i in range(6):
        yv, xv = ymax * i / 5, xmax * i / 5
        e.append(f'<line x1="{x0 + L}" x2="{x0 + L + pw}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" '
                 f'stroke="#eee"/>')
        e.append(f'<text x="{x0 + L - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">'
                 f'{yv:,.0f}</text>')
        e.append(f'<text x="{sx(xv):.1f}" y="{y0 + T + ph + 16}" text-anchor="middle">'
                 f'{xv:,.0f}</text>')
    e.append(f'<text x="{x0 + L + pw / 2}" y="{y0 + h - 4}" text-anchor="middle">{xlabel}</text>')
    for s, p in pts.items():
        if not p:
            continue
        d = " ".join(f"{sx(n):.1f},{sy(v):.1f}" for n, v in p)
        e.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[s]}" stroke-width="2"/>')
        for (n, v), (_, r) in zip(p, [x for x in series[s] if x[1].get(key) is not None]):
            fill = COLORS[s] if passed(r) else "white"
            e.append(f'<circle cx="{sx(n):.1f}" cy="{sy(v):.1f}" r="3.5" fill="{fill}" '
                     f'stroke="{COLORS[s]}" stroke-width="1.5"/>')
    return e


def chart(path, title, xlabel, by_sfu):
    series = {s: sorted(by_sfu.get(s, {}).items()) for s in SFUS}
    W, H = 900, 330
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{title}</text>']
    e += panel(0, 24, W / 2, H - 50, "packets received per second", xlabel, series,
               "receivedPerSecond")
    e += panel(W / 2, 24, W / 2, H - 50, "SFU CPU % (100 = one core)", xlabel, series,
               "serverCpuPercent")
    lx = 70
    for s in SFUS:
        e.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{H - 10}" y2="{H - 10}" '
                 f'stroke="{COLORS[s]}" stroke-width="2"/>')
        e.append(f'<text x="{lx + 26}" y="{H - 6}">{s}</text>')
        lx += 110
    e.append(f'<text x="{lx}" y="{H - 6}">hollow point: loss &gt; 1% or a failed connection '
             f'(the ladder stopped there)</text>')
    e.append("</svg>")
    open(path, "w").write("\n".join(e) + "\n")


# ---------------------------------------------------------------- report

def main():
    results, out_dir = sys.argv[1], sys.argv[2]
    runs = load(results)
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
           "- `convene-load` runs webrtc-rs 0.21.1 clients; publishers send synthetic RTP "
           "(VP8: 1000-byte payloads at 100 packets/s; Opus: 120-byte payloads at 50/s) "
           "carrying an index and a send timestamp. Convene is joined over its WebSocket "
           "signaling, Janus over its HTTP long-poll API (`janus.plugin.videoroom`, one "
           "session per member, `joinandconfigure` / subscriber `join` + `start`). The "
           "counting code (`load/src/media.rs`) is shared.",
           "- Received/s, loss and latency count only packets sent inside the measured "
           "window, after every receiver got its first packet; loss = 1 - received / "
           "(sent x receivers per packet). Latency is one-way send-to-receive on one clock "
           "(loopback). First packet: from a subscriber starting to join to its first packet.",
           "- Server CPU % is utime+stime of the SFU process over the window (/proc, 100 = "
           "one core); RSS at the window's end. Each run starts a fresh SFU process.",
           "- Everything is on 127.0.0.1 and one 2-core machine: the load tool competes "
           "with the SFU for the same cores (its own CPU % is listed), so the ladders end "
           "where this machine ends, not necessarily where the SFU does. \"Other\" CPU % "
           "is the rest of the machine's busy time (from /proc/stat) during the window; the "
           "bench waits for running builds to finish before each run.",
           "- Janus runs with a generated loopback-only config (`bench/janus.sh`: HTTP "
           "transport on 127.0.0.1, VideoRoom only, no event handlers). Janus never gathers "
           "ICE candidates on a loopback interface, so it runs with a small LD_PRELOAD "
           "shim (`bench/janus-lo-shim.c`) that clears IFF_LOOPBACK on `lo` in getifaddrs(); "
           "Janus then offers 127.0.0.1 candidates. No other change.",
           "- \"(busy)\": other processes used more than 25% of a core during that run "
           "treat its latency and CPU figures with care.",
           "- C = Convene, J = Janus. Ratios are Convene / Janus (below 1: Convene uses less).",
           ""]
    heads = []
    for name, title, xlabel in SCENARIOS:
        by_sfu = runs.get(name)
        if not by_sfu:
            continue
        chart(os.path.join(out_dir, f"chart-{name}.svg"), title, xlabel, by_sfu)
        md += [f"## {title}", "", f"![{name}](chart-{name}.svg)", "",
               table(name, by_sfu, xlabel), "", "Where the ladder stopped:", "",
               limits(by_sfu, xlabel), ""]
        h = headline(by_sfu)
        if h:
            heads.append((name, xlabel, h))
    if heads:
        md += ["## Ratios at the largest size both SFUs ran cleanly", "",
               "| scenario | size | metric | Convene | Janus | Convene / Janus |",
               "|---|---|---|---|---|---|"]
        short = {"fanout": "1 -> N audio+video", "meeting": "M x M meeting",
                 "audio": "1 -> N audio only"}
        for name, xlabel, (n, metrics) in heads:
            for k, (c, j) in metrics.items():
                d = 0 if k == "received/s" else 2
                md.append(f"| {short[name]} | {xlabel.split()[0]} = {n} | {k} | "
                          f"{fmt(c, d)} | {fmt(j, d)} | {ratio(c, j)} |")
        md.append("")
    md += scale_section(results, machine)
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


if __name__ == "__main__":
    main()
