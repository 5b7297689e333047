#!/usr/bin/env python3
"""One load-generator run -> `rps requests p50_ms p90_ms p99_ms errors` (tab-separated).

Usage: parse_run.py wrk OUTPUT
       parse_run.py h2load OUTPUT LATENCY_LOG

wrk: its --latency percentiles. h2load prints no percentiles, so they come from its
--log-file (one line per request: start µs, status, µs until the response ended).
Errors are socket errors, failed/timed-out requests, and non-2xx/3xx statuses.
"""
import re
import sys


def ms(v):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
    if not m:
        return 0.0
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[unit]


def wrk(text):
    rps = req = 0.0
    pct = {}
    errors = 0
    for line in text.splitlines():
        f = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(f[1])
        elif " requests in " in line:
            req = float(f[0])
        elif len(f) == 2 and f[0] in ("50%", "90%", "99%"):
            pct[f[0]] = ms(f[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            errors += int(f[-1])
        elif line.strip().startswith("Socket errors:"):
            errors += sum(int(n) for n in re.findall(r"\d+", line))
    return rps, req, pct.get("50%", 0.0), pct.get("90%", 0.0), pct.get("99%", 0.0), errors


def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, int(round(p / 100.0 * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def h2load(text, log_path):
    rps = req = 0.0
    errors = 0
    for line in text.splitlines():
        if line.startswith("finished in"):
            m = re.search(r"([0-9.]+) req/s", line)
            rps = float(m.group(1)) if m else 0.0
        elif line.startswith("requests:"):
            n = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\w+)", line))
            req = n.get("done", 0)
            errors += n.get("failed", 0) + n.get("errored", 0) + n.get("timeout", 0)
        elif line.startswith("status codes:"):
            n = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\dxx)", line))
            errors += n.get("4xx", 0) + n.get("5xx", 0)
    lat = []
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1] != "-1":
                    lat.append(int(parts[2]) / 1000.0)
    except OSError:
        pass
    lat.sort()
    return (rps, req, percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), errors)


def main():
    kind, out = sys.argv[1], sys.argv[2]
    with open(out, errors="replace") as f:
        text = f.read()
    if kind == "wrk":
        r = wrk(text)
    else:
        r = h2load(text, sys.argv[3])
    rps, req, p50, p90, p99, errors = r
    print(f"{rps:.1f}\t{req:.0f}\t{p50:.3f}\t{p90:.3f}\t{p99:.3f}\t{errors}")


if __name__ == "__main__":
    main()
