// publisher.js: events at a fixed rate for the relay benchmark (bench/relay.sh).
// MODE=notify: pg_notify('chat_events', …) with the extension's envelope
//   {"to":[…],"ev":{"v":1,"type":"message","chat_id":C,"msg":{"id":K,"ts":<µs>,"body":…}}}
//   sealed by chat.event_seal (FORMAT=sealed, the default), unsealed (FORMAT=envelope:
//   builds before sealed events), or FORMAT=flat: the event with its "recipients"
//   inside, unsealed, the shape of builds before the envelope and of the Node peer
//   (USERS_FIELD=recipients).
// MODE=send: SELECT chat.send_message(sender, chat, 'ts=<µs> …') on chats made by
//   relay.sh (chat k between users 2k-1 and 2k): the full path commit → frame.
// Env: RATE, DURATION, FANOUT, USERS, FIRST, CONNS, BATCH. Timestamps are
// CLOCK_MONOTONIC µs (process.hrtime), as loadgen.c reads them.
'use strict';
const { Client } = require('pg');
const RATE = Number(process.env.RATE || 500), DURATION = Number(process.env.DURATION || 10);
const FANOUT = Number(process.env.FANOUT || 2), USERS = Number(process.env.USERS || 1000);
const FIRST = Number(process.env.FIRST || 1), CONNS = Number(process.env.CONNS || 4);
const BATCH = Number(process.env.BATCH || 1), MODE = process.env.MODE || 'notify';
const FLAT = (process.env.FORMAT || 'sealed') === 'flat';
const SEALED = (process.env.FORMAT || 'sealed') === 'sealed';
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const BODY = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem';
let id = 0, issued = 0, done = 0;
const callMs = []; // duration of each call (send_message: the round trip with its commit)

function notifyPayload() {
  const users = new Set();
  while (users.size < Math.min(FANOUT, USERS)) users.add(FIRST + Math.floor(Math.random() * USERS));
  const chat = 1 + Math.floor(Math.random() * 100000), to = [...users].join(',');
  const msg = `"msg":{"id":${++id},"ts":${nowUs()},"body":"${BODY}"}`;
  if (FLAT) return `{"v":1,"type":"message","chat_id":${chat},"recipients":[${to}],${msg}}`;
  return `{"to":[${to}],"ev":{"v":1,"type":"message","chat_id":${chat},${msg}}}`;
}

(async () => {
  const clients = [];
  for (let i = 0; i < CONNS; i++) { const c = new Client(); await c.connect(); clients.push(c); }
  let chats = [];
  if (MODE === 'send') {
    const r = await clients[0].query('SELECT chat_id, user_a FROM chat.chats WHERE user_a >= $1 AND user_b < $2 ORDER BY chat_id', [FIRST, FIRST + USERS]);
    chats = r.rows.map((x) => [Number(x.chat_id), Number(x.user_a)]);
  }
  const total = Math.round(RATE * DURATION), t0 = nowUs(), cpu0 = process.cpuUsage();
  async function worker(c) {
    for (;;) {
      const el = nowUs() - t0;
      if (issued >= total || el > (DURATION + 5) * 1e6) return;
      const due = Math.min(total, Math.floor((el * RATE) / 1e6)) - issued;
      if (due <= 0) { await sleep(1); continue; }
      const b = Math.min(due, BATCH); issued += b;
      const c0 = nowUs();
      if (MODE === 'send') {
        const [chat, user] = chats[Math.floor(Math.random() * chats.length)];
        await c.query({ name: 'send', text: 'SELECT chat.send_message($1, $2, $3)', values: [user, chat, `ts=${nowUs()} ${BODY}`] });
      } else {
        const vals = Array.from({ length: b }, notifyPayload);
        // sealed as the extension seals them (FORMAT=sealed), or not
        const seal = (i) => (SEALED ? `chat.event_seal($${i})` : `$${i}`);
        const sql = 'SELECT ' + vals.map((_, i) => `pg_notify('chat_events',${seal(i + 1)})`).join(',');
        await c.query({ name: `n${b}`, text: sql, values: vals });
      }
      callMs.push((nowUs() - c0) / 1000);
      done += b;
    }
  }
  await Promise.all(clients.map(worker));
  const el = (nowUs() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  callMs.sort((a, b) => a - b);
  const q = (p) => (callMs.length ? callMs[Math.min(callMs.length - 1, Math.floor(p * callMs.length))] : null);
  console.log(JSON.stringify({ mode: MODE, rate: RATE, fanout: FANOUT, done, achieved: done / el,
    cpu_s: (cpu.user + cpu.system) / 1e6, call_p50_ms: q(0.5), call_p99_ms: q(0.99) }));
  await Promise.all(clients.map((c) => c.end()));
})().catch((e) => { console.error(e); process.exit(1); });
