// The real relay/www/chat-client.js, driven in Node against a real relay:
// connect as one user, follow one chat from a cursor, and report how the
// catch-up went (test_answer_bytes.py runs it). Node 20 needs
// --experimental-websocket; the socket sends the Origin the relay allows,
// as a browser would.
//   node --experimental-websocket victim_client.mjs URL TOKEN ORIGIN CHAT_ID CURSOR WANT TIMEOUT_MS
// Prints one JSON line: {caughtup, seqs, closes, states, errors, history, chats, frames, maxFrame}.
import { ChatClient } from '../../relay/www/chat-client.js';

const [url, token, origin, chatArg, cursorArg, wantArg, timeoutArg] = process.argv.slice(2);
const chatId = Number(chatArg);
const want = Number(wantArg);

class OriginWebSocket extends WebSocket {
  constructor(u) {
    super(u, { headers: { Origin: origin } });
    this.addEventListener('message', (e) => {
      report.frames++;
      report.maxFrame = Math.max(report.maxFrame, String(e.data).length);
    });
  }
}

const report = {
  caughtup: false, seqs: [], closes: [], states: [], errors: [], history: null, chats: null, frames: 0, maxFrame: 0,
};
const client = new ChatClient({ url, token, WebSocket: OriginWebSocket, pingInterval: 0, autoFollow: false });
client.on('state', (e) => {
  report.states.push(e.state);
  if (e.code != null) report.closes.push(e.code);
});
client.on('error', (e) => report.errors.push(`${e.code}/${e.reason}: ${e.message}`));
client.on('message', (e) => report.seqs.push(e.seq));

const done = new Promise((resolve) => {
  client.on('caughtup', (e) => {
    if (e.chat_id === chatId && report.seqs.length >= want) resolve();
  });
});
const timer = setTimeout(() => {}, 1 << 30);
try {
  await client.connect();
  client.follow(chatId, { cursor: Number(cursorArg), lastSeq: 0 });
  await Promise.race([done, new Promise((r) => setTimeout(r, Number(timeoutArg)))]);
  report.caughtup = report.seqs.length >= want;
  if (report.caughtup) {
    // the catch-up took ~30 pages of the burst of 30 requests: let the bucket refill
    await new Promise((r) => setTimeout(r, 3500));
    // a page of history bigger than the byte budget comes back whole
    const rows = await client.history(chatId, { pageSize: 100 });
    report.history = rows.map((m) => m.seq);
    report.historyMore = rows.filter((m) => 'more' in m).length;
    const chats = await client.chats({ pageSize: 10 });
    report.chats = chats.map((c) => c.chat_id);
  }
} catch (err) {
  report.errors.push(`thrown ${err.code}/${err.reason}: ${err.message}`);
} finally {
  clearTimeout(timer);
  report.states.push(`final:${client.state}`);
  client.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
