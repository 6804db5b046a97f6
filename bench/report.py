#!/usr/bin/env python3
"""Helpers of bench/run.sh.

  report.py run OUT LOGPREFIX WORKLOAD VARIANT CLIENTS RUN WINDOW [LOAD1]
      parse one pgbench output (OUT) and its per-transaction logs
      (LOGPREFIX.*), print one CSV row of results.csv: throughput and
      latencies of the transactions that finished in the last WINDOW seconds
  report.py summary DIR
      medians over runs, ratios and target checks of DIR/results.csv as
      markdown: written to DIR/results.md and printed
"""
import csv
import glob
import os
import re
import statistics
import sys

# tps, latencies and transactions: the measured window (after the ramp-up);
# pgbench_tps: pgbench's own figure over the whole run, for reference.
CSV_FIELDS = ["workload", "variant", "clients", "run", "tps", "lat_avg_ms", "p50_ms", "p99_ms",
              "transactions", "pgbench_tps", "failed", "ok", "load1"]

# Report order and labels.
VARIANTS = [
    ("send", "send_fn", "chat.send_message"),
    ("send", "send_fn_direct", "chat.send_message, event_mode = direct (extra)"),
    ("send", "send_sql", "raw SQL"),
    ("send", "send_sql_notify", "raw SQL + pg_notify"),
    ("send", "send_sql_full", "raw SQL, all of send_message's work (extra)"),
    ("history", "history_fn", "chat.history"),
    ("history", "history_sql", "raw SQL on chat.messages"),
    ("list_chats", "list_chats_fn", "chat.list_chats"),
    ("list_chats", "list_chats_sql", "raw SQL of list_chats (extra)"),
]
LABEL = {v: label for _, v, label in VARIANTS}


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def cmd_run(out, prefix, workload, variant, clients, run, window, load1=""):
    """One run: pgbench ran ramp + window seconds; only transactions that
    finished in the last `window` seconds count (new connections first fault
    in shared memory and fill their caches, which is not steady state)."""
    window = float(window)
    text = open(out, encoding="utf-8", errors="replace").read() if os.path.exists(out) else ""

    def grab(pattern, default=None):
        m = re.search(pattern, text, re.M)
        return m.group(1) if m else default

    pg_tps = grab(r"^tps = ([0-9.]+) \(without initial connection time\)")
    failed = int(grab(r"^number of failed transactions: ([0-9]+)", "0"))
    aborted = re.search(r"client \d+ aborted|Run was aborted|pgbench: error", text)
    done = []  # (finish time in µs since the epoch, latency µs)
    for path in glob.glob(glob.escape(prefix) + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                # client_id transaction_no time script_no time_epoch time_us [lag]
                if len(parts) >= 6 and parts[2].isdigit():
                    done.append((int(parts[4]) * 1000000 + int(parts[5]), int(parts[2])))
    lats = []
    if done:
        end = max(t for t, _ in done)
        start = end - window * 1e6
        lats = sorted(l for t, l in done if t > start)
    n = len(lats)
    tps = n / window if n else float("nan")
    avg = sum(lats) / n / 1000.0 if n else float("nan")
    p50 = percentile(lats, 50) / 1000.0 if n else float("nan")
    p99 = percentile(lats, 99) / 1000.0 if n else float("nan")
    ok = n > 0 and pg_tps is not None and not aborted
    row = [workload, variant, clients, run, "%.1f" % tps, "%.3f" % avg, "%.3f" % p50, "%.3f" % p99,
           n, pg_tps or "", failed, "1" if ok else "0", load1]
    csv.writer(sys.stdout, lineterminator="\n").writerow(row)


def fmt(x, digits=2):
    if x is None or x != x:
        return "n/a"
    if digits == 0:
        return "%.0f" % x
    return "%.*f" % (digits, x)


def median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def cmd_summary(d):
    rows = []
    with open(os.path.join(d, "results.csv")) as f:
        for r in csv.DictReader(f):
            rows.append(r)
    agg = {}  # (variant, clients) -> dict
    per_run = {}  # (variant, clients, run) -> tps
    for r in rows:
        key = (r["variant"], int(r["clients"]))
        a = agg.setdefault(key, {"tps": [], "lat": [], "p50": [], "p99": [], "runs": 0, "bad": 0})
        if r["ok"] != "1":
            a["bad"] += 1
            continue
        a["runs"] += 1
        a["tps"].append(float(r["tps"]))
        a["lat"].append(float(r["lat_avg_ms"]))
        a["p50"].append(float(r["p50_ms"]))
        a["p99"].append(float(r["p99_ms"]))
        per_run[(r["variant"], int(r["clients"]), int(r["run"]))] = float(r["tps"])
    med = {k: {m: median(v[m]) for m in ("tps", "lat", "p50", "p99")}
           | {"runs": v["runs"], "bad": v["bad"], "min": min(v["tps"], default=float("nan")),
              "max": max(v["tps"], default=float("nan"))}
           for k, v in agg.items()}
    clients = sorted({c for _, c in agg})
    runs = sorted({r for _, _, r in per_run})
    present = [v for _, v, _ in VARIANTS if any(k[0] == v for k in agg)]

    out = []
    meta_path = os.path.join(d, "meta.md")
    if os.path.exists(meta_path):
        out.append(open(meta_path).read().rstrip())
        out.append("")
    out.append("### Results (median over runs)")
    out.append("")
    out.append("| workload | variant | clients | TPS | TPS min-max | avg latency ms | p50 ms | p99 ms | runs |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for w, v, label in VARIANTS:
        if v not in present:
            continue
        for c in clients:
            m = med.get((v, c))
            if m is None:
                continue
            nruns = str(m["runs"]) + (" (%d failed)" % m["bad"] if m["bad"] else "")
            out.append("| %s | %s | %d | %s | %s-%s | %s | %s | %s | %s |" % (
                w, label, c, fmt(m["tps"], 0), fmt(m["min"], 0), fmt(m["max"], 0),
                fmt(m["lat"], 3), fmt(m["p50"], 3), fmt(m["p99"], 3), nruns))
    out.append("")

    def ratio(a, b, c):
        x, y = med.get((a, c)), med.get((b, c))
        if not x or not y or not y["tps"] or y["tps"] != y["tps"]:
            return float("nan")
        return x["tps"] / y["tps"]

    def paired(a, b, c):
        """Per-run ratios: the variants of one run and client count ran back to back."""
        xs = []
        for r in runs:
            x, y = per_run.get((a, c, r)), per_run.get((b, c, r))
            if x is not None and y:
                xs.append(x / y)
        return xs

    pairs = [
        ("send_fn", "send_sql", None),
        ("send_fn", "send_sql_notify", 0.8),
        ("send_fn", "send_sql_full", None),
        ("send_fn_direct", "send_sql_notify", None),
        ("history_fn", "history_sql", None),
        ("list_chats_fn", "list_chats_sql", None),
    ]
    pairs = [p for p in pairs if p[0] in present and p[1] in present]
    checks = []
    if pairs:
        out.append("### Throughput ratios (same invocation)")
        out.append("")
        out.append("Ratio of the median TPS; in brackets the ratio within each run (the variants of a run "
                   "and client count ran back to back, so they shared the machine's load of the moment).")
        out.append("")
        out.append("| ratio | " + " | ".join("%d clients" % c for c in clients) + " |")
        out.append("|---|" + "---:|" * len(clients))
        for a, b, target in pairs:
            cells = []
            for c in clients:
                r = ratio(a, b, c)
                pr = paired(a, b, c)
                cells.append("%s (%s)" % (fmt(r), ", ".join(fmt(x) for x in pr)))
                if target is not None:
                    verdict = "n/a" if r != r else ("met" if r >= target else "MISSED")
                    checks.append(("%s >= %.1f x %s at %d clients" % (LABEL[a], target, LABEL[b], c),
                                   verdict, "%s (per run: %s)" % (fmt(r), ", ".join(fmt(x) for x in pr))))
            out.append("| %s / %s | %s |" % (LABEL[a], LABEL[b], " | ".join(cells)))
        out.append("")
    for v in ("history_fn", "list_chats_fn"):
        if v not in present:
            continue
        for c in clients:
            if c <= 16 and (v, c) in med:
                p = med[(v, c)]["p50"]
                checks.append(("%s p50 < 1 ms at %d clients" % (LABEL[v], c),
                               "n/a" if p != p else ("met" if p < 1.0 else "MISSED"), fmt(p, 3) + " ms"))
        best = max((med[(v, c)]["tps"] for c in clients if (v, c) in med), default=float("nan"))
        if (v, 64) in med and best == best:
            frac = med[(v, 64)]["tps"] / best
            checks.append(("%s at 64 clients >= 60%% of best TPS" % LABEL[v],
                           "met" if frac >= 0.6 else "MISSED", "%.0f%% of %s" % (100 * frac, fmt(best, 0))))
    if checks:
        out.append("### Targets")
        out.append("")
        out.append("| target | result | measured |")
        out.append("|---|---|---|")
        for name, verdict, value in checks:
            out.append("| %s | %s | %s |" % (name, verdict, value))
        out.append("")
    text = "\n".join(out) + "\n"
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "run" and len(sys.argv) in (9, 10):
        cmd_run(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        cmd_summary(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "header":
        csv.writer(sys.stdout, lineterminator="\n").writerow(CSV_FIELDS)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
