#!/usr/bin/python3
"""Server CPU time per call of two SQL statements, alternating, in one session.

Wall-clock rates on a shared machine move with whatever else runs; the CPU
time the backend spends on a call does not (much). This connects once over
the given conninfo, finds its backend's pid, and for each round runs each
statement `calls` times (fetching every row, as a client would), reading
the backend's on-CPU nanoseconds from /proc/<pid>/schedstat before and
after. Needs to run on the database host as root or the postgres OS user.

    cpu_per_call.py CONNINFO ROUNDS CALLS NAME=SQL NAME=SQL
Prints one line per round and statement, then medians, the median of the
per-round ratios, and the fastest round of each (the least disturbed).
"""
import statistics
import sys
import time

import psycopg2


def on_cpu_ns(pid):
    with open(f'/proc/{pid}/schedstat') as f:
        return int(f.read().split()[0])


def main():
    conninfo, rounds, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    statements = [arg.split('=', 1) for arg in sys.argv[4:6]]
    conn = psycopg2.connect(conninfo)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute('SELECT pg_backend_pid()')
    pid = cur.fetchone()[0]
    cpu = {name: [] for name, _ in statements}
    wall = {name: [] for name, _ in statements}
    for _, sql in statements:           # warm the plans and caches
        for _ in range(50):
            cur.execute(sql)
            cur.fetchall()
    ratios = []
    for r in range(1, rounds + 1):
        # alternate which goes first, so neither gains from the other's warm-up
        for name, sql in (statements if r % 2 else statements[::-1]):
            c0, w0 = on_cpu_ns(pid), time.perf_counter()
            for _ in range(calls):
                cur.execute(sql)
                cur.fetchall()
            c1, w1 = on_cpu_ns(pid), time.perf_counter()
            cpu[name].append((c1 - c0) / calls / 1e6)
            wall[name].append((w1 - w0) / calls * 1e3)
            print(f'round {r}: {name}: server CPU {cpu[name][-1]:.3f} ms/call, wall {wall[name][-1]:.3f} ms/call')
        ratios.append(cpu[statements[0][0]][-1] / cpu[statements[1][0]][-1])
    (a, _), (b, _) = statements
    ma, mb = statistics.median(cpu[a]), statistics.median(cpu[b])
    print(f'median server CPU per call: {a} {ma:.3f} ms, {b} {mb:.3f} ms, ratio of medians {ma / mb:.2f}, '
          f'median of round ratios {statistics.median(ratios):.2f}')
    print(f'median wall per call: {a} {statistics.median(wall[a]):.3f} ms, '
          f'{b} {statistics.median(wall[b]):.3f} ms')
    # contention on a shared machine only ever adds time: the fastest round
    # of each is the least disturbed measurement
    print(f'fastest round, server CPU per call: {a} {min(cpu[a]):.3f} ms, {b} {min(cpu[b]):.3f} ms, '
          f'ratio {min(cpu[a]) / min(cpu[b]):.2f}')


if __name__ == '__main__':
    main()
