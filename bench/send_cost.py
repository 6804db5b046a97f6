#!/usr/bin/python3
"""CPU per send_message: the sending backend's and the publisher worker's.

Sealing events (issue 15) moved work into the publisher; a wall-clock rate
on a shared machine would hide it in noise, on-CPU time does not (much).
Connects over CONNINFO as a superuser, opens a chat of two users, and for
each round sends CALLS messages, waits until the publisher has sent them
(chat.event_queue_status() shows nothing queued), and reads both processes'
on-CPU nanoseconds from /proc/<pid>/schedstat, and the client's wall time
of each call (its p50 per round). Run on the database host as root or the
postgres OS user.

    send_cost.py CONNINFO ROUNDS CALLS TAG
Prints one line per round, then "TAG median backend X us, publisher Y us,
total Z us per message, call p50 W us" (the median of the rounds' p50s).
"""
import statistics
import sys
import time

import psycopg2


def on_cpu_ns(pid):
    with open(f'/proc/{pid}/schedstat') as f:
        return int(f.read().split()[0])


def main():
    conninfo, rounds, calls, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    conn = psycopg2.connect(conninfo)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute('SELECT pg_backend_pid()')
    me = cur.fetchone()[0]
    cur.execute("SELECT chat.open_chat(910001, 'direct', NULL, 910002)")
    chat = cur.fetchone()[0]
    body = 'x' * 200
    sql = 'SELECT chat.send_message(910001, %s, %s)'
    for _ in range(100):                # warm plans, caches and the key
        cur.execute(sql, (chat, body))
    time.sleep(0.5)
    cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'chat publisher' "
                "AND datname = current_database()")
    row = cur.fetchone()
    if row is None:
        sys.exit('no chat publisher for this database (shared_preload_libraries = chat?)')
    pub = row[0]
    be, pw, p50 = [], [], []
    for r in range(1, rounds + 1):
        wall = []
        b0, p0 = on_cpu_ns(me), on_cpu_ns(pub)
        for _ in range(calls):
            t0 = time.perf_counter()
            cur.execute(sql, (chat, body))
            wall.append(time.perf_counter() - t0)
        b1 = on_cpu_ns(me)
        time.sleep(0.3)                 # the publisher drains within a few ms
        p1 = on_cpu_ns(pub)
        be.append((b1 - b0) / calls / 1e3)
        pw.append((p1 - p0) / calls / 1e3)
        p50.append(statistics.median(wall) * 1e6)
        print(f'round {r}: backend {be[-1]:.1f} us, publisher {pw[-1]:.1f} us per message, call p50 {p50[-1]:.1f} us')
    mb, mp = statistics.median(be), statistics.median(pw)
    print(f'{tag} median backend {mb:.1f} us, publisher {mp:.1f} us, total {mb + mp:.1f} us per message, '
          f'call p50 {statistics.median(p50):.1f} us ({rounds} rounds of {calls})')


if __name__ == '__main__':
    main()
