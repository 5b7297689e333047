#!/usr/bin/env python3
"""Summarize a tests/bench results directory: tables (text and markdown), the targets
of docs/performance.md, and chart.svg.

Usage: summarize.py RESULTS_DIR

  req/s       median over rounds of the load generator's req/s
  spread      (max - min) / median of the per-round req/s
  /direct     median req/s over the backend's own (direct) median, same mode
  /nginx      ... over nginx proxy_pass; /haproxy over HAProxy
  p50, p99    median over rounds of each run's percentile (ms)
  CPU-µs/req  the target's process tree utime+stime summed over the rounds, divided by
              the requests summed over the rounds (direct: the backend itself)
  peak RSS    lifetime VmHWM summed over the target's processes (MB)
  PSS         largest 0.5 s sample of summed Pss during the runs (MB)
  idle%       whole-machine idle during the runs; other% = CPU of processes that are
              neither target, backend nor load generator, in % of one core
"""
import csv
import statistics as st
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart  # noqa: E402

MODES = {"h1": "HTTP/1.1 (wrk, saturated)", "h2c": "h2c (h2load, saturated)",
         "grpc": "gRPC-style POST over h2c (h2load, saturated)", "fixed": "HTTP/1.1 at a fixed rate (h2load --rps)"}
ORDER = ["direct", "nginx", "haproxy", "meshgate", "baseline"]


def load(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def stats_for(rows):
    rps = [num(r["rps"]) for r in rows]
    req = sum(num(r["requests"]) for r in rows)
    cpu = sum(num(r["cpu_s"]) for r in rows)
    wall = [num(r["requests"]) / num(r["rps"]) if num(r["rps"]) else 0 for r in rows]
    med = st.median(rps)
    return dict(
        rps=med, rps_all=rps, spread=100 * (max(rps) - min(rps)) / med if med else 0,
        p50=st.median(num(r["p50_ms"]) for r in rows), p90=st.median(num(r["p90_ms"]) for r in rows),
        p99=st.median(num(r["p99_ms"]) for r in rows), cpu_us=1e6 * cpu / req if req else 0,
        errors=sum(int(num(r["errors"])) for r in rows),
        idle=st.median(num(r["idle_pct"]) for r in rows),
        other=st.median(100 * num(r["other_cpu_s"]) / w if w else 0 for r, w in zip(rows, wall)),
        pss=max(num(r["max_pss_kb"]) for r in rows) / 1024, be_conns=sum(int(num(r["backend_conns"])) for r in rows),
    )


def table(headers, rows):
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    text = ["  ".join(str(h).ljust(w[i]) if i == 0 else str(h).rjust(w[i]) for i, h in enumerate(headers))]
    text += ["  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    md = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    md += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(text), "\n".join(md)


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def main():
    d = Path(sys.argv[1])
    raw = load(d / "raw.tsv")
    mem = {r["target"]: r for r in load(d / "mem.tsv")}
    extras = {r[0]: r[1] for r in csv.reader(open(d / "extras.tsv"), delimiter="\t")} if (d / "extras.tsv").exists() else {}
    env = (d / "env.txt").read_text() if (d / "env.txt").exists() else ""
    envd = dict(l.split(": ", 1) for l in env.splitlines() if ": " in l)
    S = {}
    for mode in MODES:
        for t in ORDER:
            rows = [r for r in raw if r["mode"] == mode and r["target"] == t]
            if rows:
                S[(mode, t)] = stats_for(rows)
    text, md = [], []
    head = f"{envd.get('date', '?')} on {envd.get('cpu', '?')} ({envd.get('host', '?')}); {envd.get('params', '')}"
    text.append(f"Results: {d}\n{head}\nload average before/after: {envd.get('loadavg_before', '?')} / {envd.get('loadavg_after', '?')}; machine busy before: {envd.get('machine_busy_before_pct', '?')}%")
    if envd.get("smoke") == "1":
        note = f"SMOKE run ({envd.get('meshgate', '?')}): ~1 s runs, numbers only show that everything works"
        text.append(note)
        md.append(note + "\n")
    md.append(f"Run: {head}. Load average before/after {envd.get('loadavg_before', '?')} / {envd.get('loadavg_after', '?')}.")
    for mode, title in MODES.items():
        targets = [t for t in ORDER if (mode, t) in S]
        if not targets:
            continue
        base = S.get((mode, "direct"), {}).get("rps")
        ngx = S.get((mode, "nginx"), {}).get("rps")
        hap = S.get((mode, "haproxy"), {}).get("rps")
        rows = []
        for t in targets:
            s = S[(mode, t)]
            hwm = num(mem.get(t, {}).get("vmhwm_kb")) / 1024
            if mode == "fixed":
                dp = S.get((mode, "direct"))
                add = (lambda k: f"{s[k] - dp[k]:+.3f}" if dp and t != "direct" else "-")
                rows.append([t, f"{s['rps']:.0f}", f"{s['p50']:.3f}", f"{s['p90']:.3f}", f"{s['p99']:.3f}",
                             add("p50"), add("p99"), f"{s['cpu_us']:.1f}", s["errors"]])
            else:
                rows.append([t, f"{s['rps']:.0f}", f"{s['spread']:.0f}%", ratio(s["rps"], base), ratio(s["rps"], ngx),
                             ratio(s["rps"], hap), f"{s['p50']:.3f}", f"{s['p99']:.3f}", f"{s['cpu_us']:.1f}",
                             f"{hwm:.1f}", f"{s['pss']:.1f}", f"{s['idle']:.0f}/{s['other']:.0f}", s["errors"]])
        if mode == "fixed":
            hdr = ["target", "req/s", "p50 ms", "p90 ms", "p99 ms", "added p50", "added p99", "CPU-µs/req", "errors"]
        else:
            hdr = ["target", "req/s", "spread", "/direct", "/nginx", "/haproxy", "p50 ms", "p99 ms", "CPU-µs/req",
                   "peak RSS MB", "PSS MB", "idle%/other%", "errors"]
        t_, m_ = table(hdr, rows)
        text += ["", title, t_]
        md += ["", f"**{title}**", "", m_]
        text.append("  per round req/s: " + "; ".join(
            f"{t} " + "/".join(f"{v:.0f}" for v in S[(mode, t)]["rps_all"]) for t in targets))
    sc = sidecar_table(load(d / "sidecar.tsv"))
    text += ["", "Targets (docs/performance.md)"]
    md += ["", "**Targets**", ""]
    for line in targets_report(S, extras, sc[2] if sc else None) + wasm_report(load(d / "wasm.tsv")):
        text.append("  " + line)
        md.append("- " + line)
    skipped = [l.split(": ", 1)[1] for l in env.splitlines() if l.startswith("skipped: ")]
    for s in skipped:
        text.append(f"  skipped: {s}")
        md.append(f"- skipped: {s}")
    if sc:
        text += ["", "Sidecar pair with mTLS at a fixed rate (client -> sidecar -> mTLS -> sidecar -> backend)", sc[0]]
        md += ["", "**Sidecar pair with mTLS at a fixed rate**", "", sc[1]]
    route = d / "route.txt"
    if route.exists():
        lines = [l.strip() for l in route.read_text().splitlines() if "VirtualServices" in l and ("p99" in l or "compile" in l or "heap" in l)]
        if lines:
            text += ["", "Route lookup (criterion bench route_lookup)"] + ["  " + l for l in lines]
            md += ["", "**Route lookup** (`cargo bench -p meshgate --bench route_lookup`)", "", "```"] + lines + ["```"]
    (d / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(text))
    rps = {(t, lbl): S[(m, t)]["rps"] for m, lbl in (("h1", "HTTP/1.1"), ("h2c", "h2c"), ("grpc", "gRPC-style")) for t in ORDER if (m, t) in S}
    p99 = {(t, lbl): S[(m, t)]["p99"] for m, lbl in (("h1", "HTTP/1.1 saturated"), ("h2c", "h2c saturated"), ("fixed", "HTTP/1.1 at fixed rate")) for t in ORDER if (m, t) in S}
    targets = [t for t in ORDER if any(k[0] == t for k in rps)]
    sub = f"{envd.get('date', '')[:10]}, {envd.get('cpu', '')}, 127.0.0.1, 32-byte JSON; {envd.get('params', '')}"
    (d / "chart.svg").write_text(chart.render("meshgate gateway vs nginx and HAProxy (loopback)", sub, targets, rps, p99))
    summary = ["SUMMARY"]
    for mode in ("h1", "h2c", "grpc"):
        if (mode, "meshgate") in S:
            s = S[(mode, "meshgate")]
            summary.append(f"{mode}: rps={s['rps']:.0f} /nginx={ratio(s['rps'], S.get((mode, 'nginx'), {}).get('rps'))} "
                           f"/haproxy={ratio(s['rps'], S.get((mode, 'haproxy'), {}).get('rps'))} cpu_us={s['cpu_us']:.1f}")
    errors = sum(s["errors"] for (m, t), s in S.items() if t == "meshgate")
    summary.append(f"meshgate_errors={errors}")
    print("\n" + " | ".join(summary))


def sidecar_table(rows):
    if not rows:
        return None
    by = {t: [r for r in rows if r["target"] == t] for t in ("direct", "pair")}
    if not by["direct"] or not by["pair"]:
        return None
    med = {t: {k: st.median(num(r[k]) for r in by[t]) for k in ("rps", "p50_ms", "p90_ms", "p99_ms")} for t in by}
    out = []
    for t in ("direct", "pair"):
        m = med[t]
        req = sum(num(r["requests"]) for r in by[t])
        cpu = sum(num(r["cpu_s"]) for r in by[t])
        add = (lambda k: f"{m[k] - med['direct'][k]:+.3f}" if t == "pair" else "-")
        out.append([t, f"{m['rps']:.0f}", f"{m['p50_ms']:.3f}", f"{m['p90_ms']:.3f}", f"{m['p99_ms']:.3f}",
                    add("p50_ms"), add("p90_ms"), add("p99_ms"),
                    f"{1e6 * cpu / req:.1f}" if t == "pair" and req else "-",
                    f"{max(num(r['max_rss_client_kb']) for r in by[t]) / 1024:.1f}/{max(num(r['max_rss_server_kb']) for r in by[t]) / 1024:.1f}"
                    if t == "pair" else "-",
                    sum(int(num(r["errors"])) for r in by[t])])
    added = {k: med["pair"][k] - med["direct"][k] for k in ("p50_ms", "p90_ms", "p99_ms")}
    return table(["path", "req/s", "p50 ms", "p90 ms", "p99 ms", "added p50", "added p90", "added p99",
                  "pair CPU-µs/req", "RSS MiB client/server", "errors"], out) + (added,)


def wasm_report(rows):
    """The header-adding plugin: req/s with/without (medians) and CPU-µs/req of each."""
    by = {t: [r for r in rows if r["target"] == t] for t in ("without", "with")}
    if not by["without"] or not by["with"]:
        return []
    rps = {t: st.median(num(r["rps"]) for r in v) for t, v in by.items()}
    cpu = {t: 1e6 * sum(num(r["cpu_s"]) for r in v) / max(1.0, sum(num(r["requests"]) for r in v)) for t, v in by.items()}
    errors = sum(int(num(r["errors"])) for v in by.values() for r in v)
    return [f"#7 header-adding wasm plugin (plugins/add-headers): req/s {rps['with']:.0f} with vs {rps['without']:.0f} without "
            f"({rps['with'] / rps['without']:.2f}×); CPU-µs/req {cpu['with']:.1f} vs {cpu['without']:.1f} "
            f"({cpu['with'] - cpu['without']:+.1f} µs per request; target ≤ 3 µs); errors {errors}"]


def targets_report(S, x, sidecar_added):
    out = []
    g, n, h = S.get(("h1", "meshgate")), S.get(("h1", "nginx")), S.get(("h1", "haproxy"))
    if g and n:
        r = g["rps"] / n["rps"]
        hr = f", {g['rps'] / h['rps']:.2f}× HAProxy (target ≥ 1.0)" if h else ""
        out.append(f"#1 HTTP/1.1 req/s: {r:.2f}× nginx (target ≥ 1.25){hr}")
        out.append(f"#2 CPU-µs/req: {g['cpu_us']:.1f} vs nginx {n['cpu_us']:.1f} = {g['cpu_us'] / n['cpu_us']:.2f}× (target ≤ 0.8×)")
    b = S.get(("h1", "baseline"))
    if g and b:
        out.append(f"meshgate vs baseline build (HTTP/1.1): req/s {g['rps'] / b['rps']:.2f}×, "
                   f"CPU-µs/req {g['cpu_us']:.1f} vs {b['cpu_us']:.1f} ({g['cpu_us'] / b['cpu_us']:.2f}×)")
    f, fd, fn = S.get(("fixed", "meshgate")), S.get(("fixed", "direct")), S.get(("fixed", "nginx"))
    if f and fd and fn:
        out.append(f"#3 added p99 at a fixed rate: {f['p99'] - fd['p99']:+.3f} ms vs nginx {fn['p99'] - fd['p99']:+.3f} ms (target ≤ nginx's)")
    if sidecar_added:
        out.append(f"#4 sidecar pair with mTLS at {x.get('sidecar_rate', '?')} rps: added p90 {sidecar_added['p90_ms']:+.3f} ms, "
                   f"p99 {sidecar_added['p99_ms']:+.3f} ms (target p90 ≤ 0.15 ms, p99 ≤ 0.2 ms)")
    sc = x.get("sidecar_client_idle_rss_kb")
    if sc:
        out.append(f"#5 sidecar memory: idle RSS client {num(sc) / 1024:.1f} MiB, "
                   f"server {num(x.get('sidecar_server_idle_rss_kb')) / 1024:.1f} MiB; peak RSS client "
                   f"{num(x.get('sidecar_client_hwm_kb')) / 1024:.1f} MiB, server {num(x.get('sidecar_server_hwm_kb')) / 1024:.1f} MiB "
                   f"(target ≤ 12 MiB idle, ≤ 20 MiB at 1000 rps)")
    if x.get("conns_count"):
        c = num(x["conns_count"])
        per = (num(x["conns_rss_after_kb"]) - num(x["conns_rss_before_kb"])) / c if c else 0
        out.append(f"#5 memory per idle HTTP/1.1 connection: {per:.1f} KiB over {c:.0f} connections (target ≤ 8 KiB)")
    if x.get("reload_rewrites"):
        out.append(f"#8 config rewritten every second under load: {x['reload_errors']} failed of {num(x['reload_requests']):.0f} requests, "
                   f"{x['reload_applied']}/{x['reload_rewrites']} rewrites seen applied, p99 {x['reload_p99_ms']} ms (target 0 failed)")
    return out


if __name__ == "__main__":
    main()
