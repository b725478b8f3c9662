"""report.py - the benchmark's report: reads the raw measurements that
scripts/bench.sh wrote, one line per tool and round,

    TOOL ROUND REQUESTS WALL_S USER_S SYS_S MAXRSS_KB [RATE]

(RATE only where the tool reports its own, i.e. wrk), takes the median of
each figure over the rounds, and prints one table with each figure's ratio
to `fetchtree fetch`, writes the same as JSON, then checks the issue's
targets. It only reports: the exit code is 0 whatever the figures.

    python3 bench/report.py RAW OUT.json N CONC RUNS

With --scale, RAW holds the scale run's two lines (keys "unlimited" and
"limited", ROUND 1) and the figures are printed and added to OUT.json:

    python3 bench/report.py --scale RAW OUT.json RPS WINDOW_MS
"""
import datetime
import json
import math
import os
import platform
import statistics
import sys

# In the order of the table; the last field says which fetchtree row the
# tool does the same work as (fetch: fetch only; run: fetch, decode JSON,
# count).
TOOLS = [
    ("ft_fetch", "fetchtree fetch --no-body", "fetch"),
    ("ft_run", "fetchtree run (Lua JSON)", "run"),
    ("curl_multi", "libcurl multi loop (C)", "fetch"),
    ("curl_parallel", "curl --parallel", "fetch"),
    ("wrk", "wrk -t1 (ceiling)", "fetch"),
    ("node", "node http (+JSON)", "run"),
    ("aiohttp", "aiohttp (+JSON)", "run"),
    ("scrapy", "scrapy (+JSON, N/20)", "run"),
]


def parse(line):
    """One raw line: tool, round, requests, wall s, user s, sys s, RSS KB
    [, the tool's own rate]; None for a blank line."""
    p = line.split()
    if not p:
        return None
    return {"tool": p[0], "requests": int(p[2]), "wall": float(p[3]), "user": float(p[4]),
            "sys": float(p[5]), "rss_kb": int(p[6]), "rate": float(p[7]) if len(p) > 7 else None}


def load(path):
    rows = {}
    with open(path) as f:
        for r in filter(None, map(parse, f)):
            rate = r["rate"] if r["rate"] is not None else r["requests"] / r["wall"]
            cpu = (r["user"] + r["sys"]) * 100000 / r["requests"]
            rows.setdefault(r["tool"], []).append((rate, cpu, r["rss_kb"] / 1024))
    return rows


def ratio(a, b):
    return a / b if b else float("nan")


def scale(raw, out, rps, window_ms):
    runs = {}
    with open(raw) as f:
        for r in filter(None, map(parse, f)):
            runs[r["tool"]] = {"requests": r["requests"], "time_s": r["wall"],
                               "cpu_s": round(r["user"] + r["sys"], 2), "peak_rss_mb": round(r["rss_kb"] / 1024, 1)}
    doc = {}
    for key, run in runs.items():
        run["rate"] = round(run["requests"] / run["time_s"], 1)
        line = (f"{key + ':':<11} {run['requests']} requests in {run['time_s']:.2f} s, {run['rate']:.0f}/s, "
                f"peak RSS {run['peak_rss_mb']:.1f} MB, CPU {run['cpu_s']:.2f} s")
        if key == "limited":
            # The ideal is N / rps: what the limit allows when the run keeps
            # up with it. Under the sliding window the last window's K may
            # start at (ceil(N/K)-1)*W, but only a client many times faster
            # than the limit sends K at once; that floor is shown too.
            k = max(1, int(rps * window_ms / 1000))
            ideal = run["requests"] / rps
            floor = (math.ceil(run["requests"] / k) - 1) * window_ms / 1000
            run.update({"rps": rps, "window_ms": window_ms, "ideal_time_s": ideal,
                        "burst_floor_s": floor, "rate_vs_limit": round(run["rate"] / rps, 4),
                        "actual_over_ideal": round(run["time_s"] / ideal, 4)})
            line += (f"\n{'':<11} limit {rps}/s (K = {k} per {window_ms} ms): achieved {run['rate'] / rps:.3f} of it; "
                     f"ideal time N/rps = {ideal:.0f} s, actual/ideal = {run['time_s'] / ideal:.3f} "
                     f"(all of each window at once: {floor:.0f} s)")
        print(line)
        doc[key] = run
    print()
    checks = []
    for key in ("unlimited", "limited"):
        if key in doc:
            ok = doc[key]["peak_rss_mb"] < 64
            checks.append({"target": f"{key} {doc[key]['requests']:,}: peak RSS under 64 MB", "pass": ok,
                           "value": doc[key]["peak_rss_mb"], "scale": True})
    if "limited" in doc:
        r = doc["limited"]["actual_over_ideal"]
        checks.append({"target": "limited: within 1% of the ideal time", "pass": abs(r - 1) <= 0.01, "value": r,
                       "scale": True})
    for c in checks:
        print(f"{'PASS' if c['pass'] else 'FAIL'}  {c['target']}: {c['value']}")
    with open(out) as f:
        results = json.load(f)
    results["scale"] = doc
    results["targets"] = [t for t in results.get("targets", []) if not t.get("scale")] + checks
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


def main():
    if sys.argv[1] == "--scale":
        scale(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    raw, out, n, conc, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rows = load(raw)
    med = {}
    for key, _, _ in TOOLS:
        if key in rows:
            med[key] = [statistics.median(r[i] for r in rows[key]) for i in range(3)]
    base = med.get("ft_fetch", [0, 0, 0])
    scrapy_n = max(1, n // 20)  # bench.sh's SCRAPY_N

    print(f"{n} requests per tool (scrapy: {scrapy_n}), {conc} in flight, "
          f"medians of {runs} alternating round(s) (fetchtree and the libcurl loop: of every run, "
          f"{len(rows.get('ft_fetch', []))}); ratios are tool / fetchtree fetch")
    head = f"{'tool':<27} {'req/s':>9} {'ratio':>6} {'CPU s/100k':>11} {'ratio':>6} {'peak RSS MB':>12} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    table = []
    for key, label, compares in TOOLS:
        if key not in med:
            print(f"{label:<27} {'skipped':>9}")
            continue
        rate, cpu, rss = med[key]
        rr, cr, mr = ratio(rate, base[0]), ratio(cpu, base[1]), ratio(rss, base[2])
        print(f"{label:<27} {rate:>9.0f} {rr:>6.2f} {cpu:>11.2f} {cr:>6.2f} {rss:>12.1f} {mr:>6.2f}")
        table.append({"tool": key, "label": label, "compares_with": "fetchtree " + compares,
                      "rate": round(rate, 1), "rate_ratio": round(rr, 4),
                      "cpu_s_per_100k": round(cpu, 3), "cpu_ratio": round(cr, 4),
                      "peak_rss_mb": round(rss, 2), "rss_ratio": round(mr, 4),
                      "runs": [{"rate": round(r[0], 1), "cpu_s_per_100k": round(r[1], 3),
                                "peak_rss_mb": round(r[2], 2)} for r in rows[key]]})

    print()
    targets = []

    def target(name, tool, other, factor):
        if tool not in med or other not in med:
            print(f"SKIP  {name} (no figures)")
            return
        a, b = med[tool][0], med[other][0]
        ok = a >= factor * b
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {a:.0f}/s vs {b:.0f}/s = {a / b:.2f} (target >= {factor:g})")
        targets.append({"target": name, "pass": ok, "rate": round(a, 1), "other_rate": round(b, 1),
                        "ratio": round(a / b, 4), "needed": factor})

    if "curl_multi" in med:
        fl = med["curl_multi"][0]
        ctx = ", ".join(f"{ratio(fl, med[k][0]):.2f}x {label}" for k, label, _ in TOOLS
                        if k in ("curl_parallel", "node", "aiohttp") and k in med)
        print(f"for scale: the bare libcurl loop itself reaches {ctx}")
    target("fetchtree fetch >= 90% of the libcurl multi loop", "ft_fetch", "curl_multi", 0.9)
    target("fetchtree fetch >= 2x curl --parallel", "ft_fetch", "curl_parallel", 2)
    target("fetchtree fetch >= 2x Node", "ft_fetch", "node", 2)
    target("fetchtree run (Lua JSON) >= 75% of the libcurl multi loop", "ft_run", "curl_multi", 0.75)
    target("fetchtree run (Lua JSON) >= 10x aiohttp", "ft_run", "aiohttp", 10)

    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "nproc": len(os.sched_getaffinity(0)),
        "requests": n,
        "scrapy_requests": scrapy_n,
        "concurrency": conc,
        "rounds": runs,
        "server": "nginx, 1 worker, 127.0.0.1",
        "tools": table,
        "targets": targets,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
