#!/usr/bin/python3
"""commit_to_frame.py ARRIVALS: the full path measured from the commit.

ARRIVALS holds "chat_id seq unix_µs" per message frame received (loadgen
--arrivals). Each message's commit time is pg_xact_commit_timestamp of its
row (the bench cluster runs with track_commit_timestamp = on; the time is
taken as the commit record is written, so the wait for the WAL flush is
inside the figure). Prints {"n":…,"p50_ms":…,"p99_ms":…,"max_ms":…}.
Connects with the PG* environment variables.
"""
import json
import sys

import psycopg2


def main():
    arrivals = []
    with open(sys.argv[1]) as f:
        for line in f:
            chat, seq, us = line.split()
            arrivals.append((int(chat), int(seq), int(us)))
    out = {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    if arrivals:
        keys = sorted({(c, s) for c, s, _ in arrivals})
        with psycopg2.connect("") as conn, conn.cursor() as cur:
            cur.execute(
                """SELECT m.chat_id, m.seq,
                          (extract(epoch FROM pg_xact_commit_timestamp(m.xmin)) * 1e6)::bigint
                     FROM chat.messages m
                     JOIN unnest(%s::bigint[], %s::bigint[]) AS k(chat_id, seq)
                       ON m.chat_id = k.chat_id AND m.seq = k.seq""",
                ([c for c, _ in keys], [s for _, s in keys]))
            committed = {(c, s): us for c, s, us in cur.fetchall() if us is not None}
        delays = sorted(us - committed[(c, s)] for c, s, us in arrivals if (c, s) in committed)
        if delays:
            q = lambda p: round(delays[min(len(delays) - 1, int(p * len(delays)))] / 1000, 3)
            out = {"n": len(delays), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
