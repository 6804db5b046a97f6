#!/usr/bin/python3
"""What one webhook endpoint costs send_message, in pairs of rounds.

Connects over CONNINFO as a superuser (the extension's owner), opens a chat
of two users, and for each round sends CALLS messages of 200 characters
with no webhook endpoint and CALLS with one endpoint taking "message" (the
order alternating from round to round; a second connection adds and
removes the endpoint, and its deliveries with it). Each half reads the
sending backend's on-CPU time from /proc/<pid>/schedstat and the client's
wall time of every call. Pairs taken side by side share the machine's
noise, so their ratios are what to look at. Run on the database host as
root or the postgres OS user.

    webhook_cost.py CONNINFO ROUNDS CALLS
Prints one line per round, then the medians: backend us per message and
call p50 us, none and one, and the median of the rounds' one/none ratios.
"""
import base64
import statistics
import sys
import time

import psycopg2

SECRET = 'whsec_' + base64.b64encode(bytes(range(32))).decode()


def on_cpu_ns(pid):
    with open(f'/proc/{pid}/schedstat') as f:
        return int(f.read().split()[0])


def half(cur, pid, chat, calls):
    """CALLS sends: backend us per message and the p50 of the calls' wall time in us."""
    sql = 'SELECT chat.send_message(910101, %s, %s)'
    body = 'x' * 200
    for _ in range(20):                 # the cache reads the endpoints again
        cur.execute(sql, (chat, body))
    wall = []
    b0 = on_cpu_ns(pid)
    for _ in range(calls):
        t0 = time.perf_counter()
        cur.execute(sql, (chat, body))
        wall.append(time.perf_counter() - t0)
    return (on_cpu_ns(pid) - b0) / calls / 1e3, statistics.median(wall) * 1e6


def main():
    conninfo, rounds, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = psycopg2.connect(conninfo)
    conn.autocommit = True
    admin = psycopg2.connect(conninfo)
    admin.autocommit = True
    cur, acur = conn.cursor(), admin.cursor()
    acur.execute("SELECT count(chat.remove_webhook(endpoint_id)) FROM chat.webhooks "
                 "WHERE url = 'https://hooks.example.com/webhook_cost'")
    cur.execute('SELECT pg_backend_pid()')
    pid = cur.fetchone()[0]
    cur.execute("SELECT chat.open_chat(910101, 'direct', NULL, 910102)")
    chat = cur.fetchone()[0]
    for _ in range(200):                # warm plans, caches and the key
        cur.execute('SELECT chat.send_message(910101, %s, %s)', (chat, 'x' * 200))
    res = {'none': [], 'one': []}
    for r in range(1, rounds + 1):
        for mode in (('none', 'one') if r % 2 else ('one', 'none')):
            endpoint = None
            if mode == 'one':
                acur.execute("SELECT chat.add_webhook('https://hooks.example.com/webhook_cost', %s, "
                             "ARRAY['message'])", (SECRET,))
                endpoint = acur.fetchone()[0]
            res[mode].append(half(cur, pid, chat, calls))
            if endpoint is not None:
                acur.execute('SELECT chat.remove_webhook(%s)', (endpoint,))
        n, o = res['none'][-1], res['one'][-1]
        print(f'round {r}: backend none {n[0]:.1f} one {o[0]:.1f} us ({o[0] / n[0]:.3f}), '
              f'call p50 none {n[1]:.1f} one {o[1]:.1f} us ({o[1] / n[1]:.3f})')
    med = {m: [statistics.median(x[i] for x in v) for i in (0, 1)] for m, v in res.items()}
    cpu_ratio = statistics.median(o[0] / n[0] for n, o in zip(res['none'], res['one']))
    p50_ratio = statistics.median(o[1] / n[1] for n, o in zip(res['none'], res['one']))
    print(f'median backend none {med["none"][0]:.1f} one {med["one"][0]:.1f} us per message '
          f'(ratio {cpu_ratio:.3f}), call p50 none {med["none"][1]:.1f} one {med["one"][1]:.1f} us '
          f'(ratio {p50_ratio:.3f}) ({rounds} rounds of {calls} each)')


if __name__ == '__main__':
    main()
