#!/usr/bin/env python3
"""Instructions chat-relay spends per event, counted by callgrind (the same
count whatever else the machine does). Usage, with a cluster that has the
extension and chat_relay LOGIN (PGHOST, PGPORT, PGDATABASE):

    relay_callgrind.py RELAY_BIN sealed|plain|flat N TAG

runs RELAY_BIN under callgrind, connects two users, publishes N message
events to both (sealed envelopes; plain: unsealed envelopes, for builds
before sealed events; flat: recipients inside, for builds before the
envelope), reads the 2N frames, stops the relay and prints "TAG N Ir".
Per event: (Ir at N - Ir at 0) / N. docs/benchmarks-relay.md has results."""
import asyncio, json, os, subprocess, sys, time, hmac, hashlib, base64, urllib.request
import psycopg2, websockets
binpath, fmt, n, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
PGHOST, PGPORT = os.environ.get("PGHOST", "/tmp"), int(os.environ.get("PGPORT", "5432"))
PGDATABASE = os.environ.get("PGDATABASE", "chat")
SECRET = b"callgrind-secret-0123456789-abcdefghijklmnopqrstuv"
open("/tmp/cg-secret", "wb").write(SECRET)
port = 24900 + (hash(tag) % 50)
def b64(d): return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
def jwt(sub):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()); p = b64(json.dumps({"sub": str(sub), "exp": int(time.time()) + 3600}).encode())
    return h + "." + p + "." + b64(hmac.new(SECRET, (h + "." + p).encode(), hashlib.sha256).digest())
out = "/tmp/cg.%s" % tag
proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binpath, "--listen", "127.0.0.1:%d" % port,
    "--db", "host=%s port=%d dbname=%s user=chat_relay" % (PGHOST, PGPORT, PGDATABASE), "--jwt-secret-file", "/tmp/cg-secret",
    "--allow-origin", "http://x", "--relay-id", "cg-" + tag, "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=open(out + ".log", "w"))
for _ in range(600):
    try:
        if urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1).status == 200: break
    except Exception: pass
    time.sleep(0.1)
async def go():
    ws = [await websockets.connect("ws://127.0.0.1:%d/ws?access_token=%s" % (port, jwt(u)), origin="http://x") for u in (7001, 7002)]
    for w in ws: await w.recv()
    conn = psycopg2.connect(host=PGHOST, port=PGPORT, dbname=PGDATABASE, user="postgres"); conn.autocommit = True; cur = conn.cursor()
    body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem"
    for i in range(n):
        ev = '{"v":1,"type":"message","chat_id":%d,"seq":%d,"cursor":%d,"sender_id":7001,"inline":true,"message":{"seq":%d,"body":"%s"}}' % (5, i + 1, i + 1, i + 1, body)
        if fmt == "flat":  # before the envelope
            payload = ev[:-1].replace('"sender_id":7001,', '"sender_id":7001,"recipients":[7001,7002],') + "}"
        else:
            payload = '{"to":[7001,7002],"ev":%s}' % ev
        # sealed as the extension seals (builds before sealed events: plain)
        cur.execute("SELECT pg_notify('chat_events', %s)" % ("%s" if fmt == "plain" else "chat.event_seal(%s)"), (payload,))
        if i % 50 == 49: await asyncio.sleep(0.01)
    for w in ws:
        for _ in range(n): await asyncio.wait_for(w.recv(), 60)
    for w in ws: await w.close()
asyncio.run(go())
time.sleep(1)
proc.send_signal(15); proc.wait(120)
tot = [l for l in open(out) if l.startswith("summary:") or l.startswith("totals:")]
print(tag, n, tot[-1].split()[1])
