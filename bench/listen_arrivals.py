#!/usr/bin/python3
"""listen_arrivals.py FILE SECONDS: the full path's baseline without a relay.

LISTENs on chat_events for SECONDS and writes "chat_id seq unix_µs" for
every message event as it arrives, the format of loadgen --arrivals, so
that commit_to_frame.py gives the time from commit to a plain LISTEN client
of PostgreSQL: what any relay starts from. Connects with the PG* variables.
"""
import json
import select
import sys
import time

import psycopg2


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    conn.cursor().execute("LISTEN chat_events")
    end = time.time() + float(sys.argv[2])
    with open(sys.argv[1], "w") as out:
        while time.time() < end:
            if not select.select([conn], [], [], 0.2)[0]:
                continue
            conn.poll()
            now = time.time_ns() // 1000
            for n in conn.notifies:
                doc = json.loads(n.payload)
                for e in doc if isinstance(doc, list) else [doc]:
                    if e.get("type") == "message":
                        out.write("%d %d %d\n" % (e["chat_id"], e["seq"], now))
            conn.notifies.clear()
    conn.close()


if __name__ == "__main__":
    main()
