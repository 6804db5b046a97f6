// Many browsers behind a load balancer, in one Node process: the real
// relay/www/chat-client.js for every receiver and for the sender, plus
// negative controls (a bare WebSocket client that reconnects but never
// calls catch_up). test/ha/test_balancer.py drives it over stdin and reads
// what happens on stdout, one JSON object a line; all times are Date.now()
// (ms), the clock the test reads too.
//   node --experimental-websocket clients.mjs SETUP.json
// SETUP: {url, origin, interval_ms, receivers: [{name, user, token, chat}],
//         controls: [same], sender: {user, token, chats: [...]}}
// Commands (stdin, one a line): start (the sender sends one message to
// every chat each interval_ms), stop (stops, waits for every send to be
// acknowledged or fail, says {"type":"stopped"}), report, quit.
// Says: {"type":"ready"} once everyone is welcomed, then {"type":"welcome" |
// "disconnect", who, relay | code, t} as they happen, and for report
// {"type":"report", clients: {name: {seqs, welcomes, disconnects}}}.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ChatClient, restartDelay } from '../../relay/www/chat-client.js';

const setup = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// a browser sends the Origin of its page; the relay checks it
class OriginWebSocket extends WebSocket {
  constructor(u) {
    super(u, { headers: { Origin: setup.origin } });
  }
}

const record = {}; // name -> {seqs, welcomes: [{relay, t}], disconnects: [{code, t}]}
const newRecord = (name) => (record[name] = { seqs: [], welcomes: [], disconnects: [] });

/** A receiver: the real client, following its chat from the start. */
function receiver({ name, token, chat }) {
  const r = newRecord(name);
  const c = new ChatClient({ url: setup.url, token, WebSocket: OriginWebSocket, autoFollow: false });
  c.on('welcome', (w) => {
    r.welcomes.push({ relay: w.relay_id, t: Date.now() });
    out({ type: 'welcome', who: name, relay: w.relay_id, t: Date.now() });
  });
  c.on('disconnect', (e) => {
    r.disconnects.push({ code: e.code, t: Date.now() });
    out({ type: 'disconnect', who: name, code: e.code, t: Date.now() });
  });
  // once per (chat, seq), live or from catch_up
  c.on('message', (e) => {
    if (e.chat_id === chat) r.seqs.push(e.seq);
  });
  c.on('error', (e) => out({ type: 'error', who: name, code: e.code, message: e.message }));
  c.follow(chat, { cursor: 0, lastSeq: 0 });
  return c.connect().then(() => c);
}

/**
 * A negative control: reconnects after 1012 like chat-client.js (at the
 * far end of its jitter: backoff.restart, 1 s), but keeps only the live
 * events it hears and never calls catch_up. The test's checker must find
 * what it missed while away.
 */
function control({ name, token, chat }) {
  const r = newRecord(name);
  let first;
  const welcomed = new Promise((resolve) => { first = resolve; });
  let closed = false;
  const open = () => {
    const ws = new OriginWebSocket(setup.url + '?access_token=' + encodeURIComponent(token));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'welcome') {
        r.welcomes.push({ relay: m.relay_id, t: Date.now() });
        out({ type: 'welcome', who: name, relay: m.relay_id, t: Date.now() });
        first();
      } else if (m.type === 'message' && m.chat_id === chat) {
        r.seqs.push(m.seq);
      }
    };
    ws.onclose = (e) => {
      r.disconnects.push({ code: e.code, t: Date.now() });
      out({ type: 'disconnect', who: name, code: e.code, t: Date.now() });
      if (!closed) setTimeout(open, e.code === 1012 ? restartDelay({ restart: 1000 }, () => 1) : 500);
    };
    ws.onerror = () => {};
    current = ws;
  };
  let current = null;
  open();
  return welcomed.then(() => ({ close: () => { closed = true; current.close(); } }));
}

/** The sender: the real client, one message to each chat every interval_ms while started. */
const sender = (() => {
  const { token, chats } = setup.sender;
  const c = new ChatClient({ url: setup.url, token, WebSocket: OriginWebSocket, autoFollow: false, sendTimeout: 30000 });
  newRecord('sender');
  c.on('welcome', (w) => {
    record.sender.welcomes.push({ relay: w.relay_id, t: Date.now() });
    out({ type: 'welcome', who: 'sender', relay: w.relay_id, t: Date.now() });
  });
  c.on('disconnect', (e) => {
    record.sender.disconnects.push({ code: e.code, t: Date.now() });
    out({ type: 'disconnect', who: 'sender', code: e.code, t: Date.now() });
  });
  const sends = [];
  let timer = null;
  let n = 0;
  const stats = { sent: 0, acked: 0, failed: [] };
  const tick = () => {
    n++;
    for (const chat of chats) {
      stats.sent++;
      sends.push(c.send(chat, `tick ${n} to ${chat}`).then(
        () => { stats.acked++; },
        (err) => { stats.failed.push(`${chat}: ${err.code} ${err.message}`); },
      ));
    }
  };
  return {
    client: c,
    start() {
      if (!timer) timer = setInterval(tick, setup.interval_ms);
    },
    async stop() {
      clearInterval(timer);
      timer = null;
      await Promise.allSettled(sends);
      return stats;
    },
  };
})();

const keepAlive = setInterval(() => {}, 1 << 30);
const clients = [];
try {
  const all = [sender.client.connect().then(() => sender.client)];
  for (const spec of setup.receivers) all.push(receiver(spec));
  for (const spec of setup.controls || []) all.push(control(spec));
  clients.push(...(await Promise.all(all)));
  out({ type: 'ready', t: Date.now() });
} catch (err) {
  out({ type: 'fatal', message: String(err && err.stack || err) });
  process.exit(1);
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const cmd = line.trim();
  if (cmd === 'start') {
    sender.start();
    out({ type: 'started', t: Date.now() });
  } else if (cmd === 'stop') {
    const stats = await sender.stop();
    out({ type: 'stopped', t: Date.now(), ...stats });
  } else if (cmd === 'report') {
    out({ type: 'report', t: Date.now(), clients: record });
  } else if (cmd === 'quit') {
    break;
  }
}
for (const c of clients) c.close();
clearInterval(keepAlive);
out({ type: 'bye' });
process.exit(0);
