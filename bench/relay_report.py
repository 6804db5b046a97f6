#!/usr/bin/env python3
"""Summarise bench/relay.sh runs: medians over runs, chat-relay against the
Node peer, as the Markdown tables of docs/benchmarks-relay.md.

    bench/relay_report.py /tmp/brun1/results.jsonl /tmp/brun2/results.jsonl ...

DURATION is the publishing time of each phase (bench/relay.sh DUR, 10 s):
delivered frames/s = frames / DURATION.
"""
import json
import os
import statistics
import sys
from collections import defaultdict

DURATION = float(os.environ.get("DURATION", "10"))
P99_LIMIT_MS = 100.0


def load(paths):
    """(relay, test, key) -> list of result dicts, one per run."""
    runs = defaultdict(list)
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                key = d.get("conns") if d["test"] == "rss" else d.get("rate")
                runs[(d["relay"], d["test"], key)].append(d)
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    return "—" if v is None else ("%.*f" % (digits, v))


def ratio(a, b):
    return None if a is None or not b else a / b


def lg(d, k):
    return d["loadgen"].get(k)


def cpu_per_100k(d):
    frames, cpu = lg(d, "frames"), d["cpu"]["relay"]
    return cpu / frames * 100000 if frames else None


def main(paths):
    runs = load(paths)
    # one file may hold several runs (RUNS=3 appends them to one results.jsonl)
    n_runs = max((len(ds) for ds in runs.values()), default=0)
    out = []
    out.append("Medians of %d run(s).\n" % n_runs)

    out.append("### Memory per idle connection (RSS growth / connections)\n")
    out.append("| connections | chat-relay KB | Node peer KB | ratio |")
    out.append("|---|---|---|---|")
    for n in (1000, 10000):
        o = med([d["per_conn_kb"] for d in runs.get(("ours", "rss", n), [])])
        p = med([d["per_conn_kb"] for d in runs.get(("node", "rss", n), [])])
        out.append("| %d | %s | %s | %s |" % (n, fmt(o), fmt(p), fmt(ratio(o, p))))

    out.append("\n### Latency, pg_notify → frame, 1,000 clients, 2 recipients per event\n")
    out.append("| events/s | chat-relay p50 / p99 ms | Node p50 / p99 ms | chat-relay CPU s | Node CPU s |")
    out.append("|---|---|---|---|---|")
    for rate in (500, 2000):
        o = runs.get(("ours", "latency", rate), [])
        p = runs.get(("node", "latency", rate), [])
        out.append("| %d | %s / %s | %s / %s | %s | %s |" % (
            rate, fmt(med([lg(d, "p50_ms") for d in o])), fmt(med([lg(d, "p99_ms") for d in o])),
            fmt(med([lg(d, "p50_ms") for d in p])), fmt(med([lg(d, "p99_ms") for d in p])),
            fmt(med([d["cpu"]["relay"] for d in o])), fmt(med([d["cpu"]["relay"] for d in p]))))

    out.append("\n### CPU seconds of the relay process per 100,000 delivered frames\n")
    out.append("| load | chat-relay | Node peer | ratio |")
    out.append("|---|---|---|---|")
    rows = [("latency", r, "%d events/s × 2 recipients" % r) for r in (500, 2000)]
    fan_rates = sorted({k[2] for k in runs if k[1] == "fanout"})
    rows += [("fanout", r, "%d events/s × 100 recipients" % r) for r in fan_rates]
    for test, rate, label in rows:
        o = med([cpu_per_100k(d) for d in runs.get(("ours", test, rate), [])])
        p = med([cpu_per_100k(d) for d in runs.get(("node", test, rate), [])])
        out.append("| %s | %s | %s | %s |" % (label, fmt(o), fmt(p), fmt(ratio(o, p))))

    # runs recorded before the split was measured have no relay_sys
    split = [(t, r, l) for t, r, l in rows
             if any("relay_sys" in d["cpu"] for k in ("ours", "node") for d in runs.get((k, t, r), []))]
    if split:
        out.append("\n### Where the relay's CPU goes: user / kernel seconds per 100,000 frames, context switches per frame\n")
        out.append("| load | chat-relay user / kernel | switches | Node peer user / kernel | switches | a third of Node's total |")
        out.append("|---|---|---|---|---|---|")
        for test, rate, label in split:
            cells = []
            for relay in ("ours", "node"):
                ds = [d for d in runs.get((relay, test, rate), []) if "relay_sys" in d["cpu"] and lg(d, "frames")]
                sys_ = med([d["cpu"]["relay_sys"] / lg(d, "frames") * 100000 for d in ds])
                user = med([(d["cpu"]["relay"] - d["cpu"]["relay_sys"]) / lg(d, "frames") * 100000 for d in ds])
                sw = med([d["cpu"]["relay_switches"] / lg(d, "frames") for d in ds])
                cells += ["%s / %s" % (fmt(user), fmt(sys_)), fmt(sw)]
            third = med([cpu_per_100k(d) for d in runs.get(("node", test, rate), [])])
            cells.append(fmt(third / 3 if third is not None else None))
            out.append("| %s | %s |" % (label, " | ".join(cells)))

    out.append("\n### Fan-out: each event to 100 of 1,000 connections\n")
    out.append("| events/s | chat-relay frames/s | p99 ms | Node frames/s | p99 ms |")
    out.append("|---|---|---|---|---|")
    best = {"ours": 0.0, "node": 0.0}
    for rate in fan_rates:
        cells = []
        for relay in ("ours", "node"):
            ds = runs.get((relay, "fanout", rate), [])
            fps = med([lg(d, "frames") / DURATION for d in ds])
            p99 = med([lg(d, "p99_ms") for d in ds])
            if fps is not None and p99 is not None and p99 < P99_LIMIT_MS:
                best[relay] = max(best[relay], fps)
            cells += [fmt(fps, 0), fmt(p99, 1)]
        out.append("| %d | %s |" % (rate, " | ".join(cells)))
    out.append("\nHighest delivered frames/s with p99 under %d ms: chat-relay %s, Node peer %s (ratio %s)." % (
        P99_LIMIT_MS, fmt(best["ours"], 0), fmt(best["node"], 0), fmt(ratio(best["ours"], best["node"]))))

    out.append("\n### CPU seconds of every process during a phase (all share 2 cores)\n")
    out.append("| phase | relay | relay process | PostgreSQL | load generator | publisher | whole machine |")
    out.append("|---|---|---|---|---|---|---|")
    phases = [("latency", r, "%d events/s × 2" % r) for r in (500, 2000)]
    phases += [("fanout", r, "%d events/s × 100" % r) for r in fan_rates]
    phases += [("full_path", r, "send_message %d/s" % r) for r in sorted({k[2] for k in runs if k[1] == "full_path"})]
    for test, rate, label in phases:
        for relay, name in (("ours", "chat-relay"), ("node", "Node peer")):
            ds = runs.get((relay, test, rate), [])
            if not ds:
                continue
            # a process that ended before the phase did reads as 0: no figure
            cells = [fmt(med([d["cpu"][k] if d["cpu"][k] >= 0 else None for d in ds]))
                     for k in ("relay", "postgres", "loadgen", "publisher", "machine")]
            out.append("| %s | %s | %s |" % (label, name, " | ".join(cells)))

    out.append("\n### Full path: `chat.send_message` commit → frame (sender and peer connected)\n")
    out.append("| relay | target msg/s | achieved msg/s | commit → frame p50 / p99 ms | call → frame p50 / p99 ms | the call alone p50 / p99 ms |")
    out.append("|---|---|---|---|---|---|")
    full_rates = sorted({k[2] for k in runs if k[1] == "full_path"})
    for rate, relay, name in [(r, relay, name) for r in full_rates
                              for relay, name in (("none", "no relay (a LISTEN client)"),
                                                  ("ours", "chat-relay"), ("node", "Node peer"))]:
        ds = runs.get((relay, "full_path", rate), [])
        if not ds:
            continue
        commit = [d.get("commit_to_frame", {}) for d in ds]
        out.append("| %s | %d | %s | %s / %s | %s / %s | %s / %s |" % (
            name, rate, fmt(med([d["publisher"]["achieved"] for d in ds]), 0),
            fmt(med([c.get("p50_ms") for c in commit])), fmt(med([c.get("p99_ms") for c in commit])),
            fmt(med([d.get("loadgen", {}).get("p50_ms") for d in ds])),
            fmt(med([d.get("loadgen", {}).get("p99_ms") for d in ds])),
            fmt(med([d["publisher"].get("call_p50_ms") for d in ds])),
            fmt(med([d["publisher"].get("call_p99_ms") for d in ds]))))
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
