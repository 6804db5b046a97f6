#!/usr/bin/python3
"""Read pgbench --log files and a maintenance window; print, per pgbench
script (0 writer, 1 reader), the worst transaction latency overlapping the
window and outside it, as JSON.

usage: maintenance_stalls.py T0 T1 SERVERLOG OFFSET LOGFILE...
  T0, T1     epoch seconds when the maintenance statement started and returned
  SERVERLOG  the server log (log_line_prefix '%m [%p] %a ', log_lock_waits on,
             a small deadlock_timeout), read from byte OFFSET: the lock waits
             of pgbench sessions, exact whatever the CPU noise
  LOGFILE    pgbench --log files
A pgbench log line (PostgreSQL 15, with --rate):
  client_id transaction_no time_us script_no time_epoch time_us_part [schedule_lag_us]
time_us is the latency including schedule lag; the transaction ended at
time_epoch + time_us_part / 1e6. Its own execution time (time_us minus the
lag) is what a lock wait lengthens; the lag also grows when pgbench itself
is starved of CPU, so both are reported.
"""
import json
import re
import sys

WAIT = re.compile(r"\] pgbench LOG:  process \d+ acquired (\w+) on relation (\d+) of database \d+ after ([\d.]+) ms")
STILL = re.compile(r"\] pgbench LOG:  process (\d+) still waiting for (\w+)")


def ms(x):
    return round(x * 1000, 1) if x is not None else None


def main():
    t0, t1 = float(sys.argv[1]), float(sys.argv[2])
    waits, waiting = [], 0
    with open(sys.argv[3], errors="replace") as f:
        f.seek(int(sys.argv[4]))
        for line in f:
            m = WAIT.search(line)
            if m:
                waits.append((float(m.group(3)), m.group(1)))
            elif STILL.search(line):
                waiting += 1
    by_script = {}
    for path in sys.argv[5:]:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 6 or p[2] == "skipped":
                    continue
                lat = int(p[2]) / 1e6
                lag = int(p[6]) / 1e6 if len(p) > 6 else 0.0
                end = int(p[4]) + int(p[5]) / 1e6
                start = end - (lat - lag)
                inside, outside = by_script.setdefault(p[3], ([], []))
                (inside if end >= t0 and start <= t1 else outside).append((lat - lag, lat))
    out = {}
    for script, (inside, outside) in sorted(by_script.items()):
        execs = sorted(e for e, _ in inside + outside)
        out["writer" if script == "0" else "reader"] = {
            "transactions": len(execs),
            "during": len(inside),
            "worst_during_ms": ms(max(e for e, _ in inside) if inside else None),
            "worst_outside_ms": ms(max(e for e, _ in outside) if outside else None),
            "worst_latency_during_ms": ms(max(l for _, l in inside) if inside else None),
            "p99_ms": ms(execs[int(len(execs) * 0.99)]),
            "p50_ms": ms(execs[len(execs) // 2]),
        }
    worst = max(waits) if waits else (0.0, None)
    out["lock_waits"] = {"count": len(waits), "longest_ms": round(worst[0], 1), "mode": worst[1],
                         "unfinished": waiting - len(waits)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
