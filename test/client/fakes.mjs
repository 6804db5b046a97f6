// Test doubles for chat-client.js: a manual clock (setTimeout / clearTimeout /
// now), a scripted WebSocket whose "server side" the test drives, a fake
// window and a fake URL object registry.
import { ChatClient } from '../../relay/www/chat-client.js';

/** Lets pending promise callbacks run. */
export async function flush(rounds = 5) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export class Clock {
  constructor() {
    this.now = 1_700_000_000_000;
    this.timers = new Map();
    this.seq = 0;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.now + Math.max(0, ms || 0), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  get pending() {
    return this.timers.size;
  }

  /** Delays of the timers set now, soonest first. */
  delays() {
    return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  /** Move time forward, running every timer that falls due, in order. */
  async advance(ms) {
    const target = this.now + ms;
    await flush();
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) if (t.at <= target && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      await flush();
    }
    this.now = target;
    await flush();
  }
}

/** The reason the fake relay gives with each code unless told another (docs/protocol.md). */
export const DEFAULT_REASON = Object.freeze({
  unauthorized: 'token_invalid', forbidden: 'access_denied', invalid: 'bad_param',
  rate_limited: 'requests', too_large: 'frame_too_large', unavailable: 'database_unavailable',
  internal: 'internal',
});

export class FakeWebSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.all.push(this);
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data));
  }

  close(code) {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }

  // ---- the server side ----
  welcome(userId = 7, extra = {}) {
    this.readyState = 1;
    if (this.onopen) this.onopen({});
    this.push({ type: 'welcome', v: 1, user_id: userId, relay_id: 'relay-test', expires_at: 1_700_003_600, ...extra });
  }

  push(obj) {
    if (this.onmessage) this.onmessage({ data: JSON.stringify(obj) });
  }

  /** The server closes (or the network drops: 1006). */
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    if (this.onclose) this.onclose({ code, reason });
  }

  requests(type) {
    return this.sent.filter((m) => !type || m.type === type);
  }

  last(type) {
    const r = this.requests(type);
    return r[r.length - 1];
  }

  ok(req, result) {
    this.push({ type: 'ok', id: req.id, result });
  }

  /** An error answer as the relay sends it: code, reason (a default one per code) and message. */
  error(req, code, message = code, reason = DEFAULT_REASON[code] ?? 'internal') {
    this.push({ type: 'error', id: req.id, code, reason, message });
  }

  get handlersAttached() {
    return !!(this.onopen || this.onmessage || this.onclose || this.onerror);
  }
}
FakeWebSocket.all = [];

export class FakeWindow {
  constructor() {
    this.listeners = new Map();
  }
  addEventListener(t, fn) {
    if (!this.listeners.has(t)) this.listeners.set(t, new Set());
    this.listeners.get(t).add(fn);
  }
  removeEventListener(t, fn) {
    this.listeners.get(t)?.delete(fn);
  }
  dispatch(t) {
    for (const fn of this.listeners.get(t) || []) fn({ type: t });
  }
  count() {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}

export class FakeURL {
  constructor() {
    this.live = new Set();
    this.n = 0;
  }
  createObjectURL() {
    const u = `blob:fake/${++this.n}`;
    this.live.add(u);
    return u;
  }
  revokeObjectURL(u) {
    this.live.delete(u);
  }
}

/** A client wired to fakes; returns {client, clock, win, urls, sockets, events}. */
export function makeClient(opts = {}) {
  FakeWebSocket.all = [];
  const clock = new Clock();
  const win = new FakeWindow();
  const urls = new FakeURL();
  let n = 0;
  const client = new ChatClient({
    url: 'ws://relay.test/ws',
    token: 'tok',
    WebSocket: FakeWebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: () => clock.now,
    random: () => 0.5,
    uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    window: win,
    URL: urls,
    logger: { error() {} },
    pingInterval: 0,
    backoff: { min: 100, max: 1000, factor: 2, slow: 5000 },
    ...opts,
  });
  const events = [];
  for (const t of ['message', 'edit', 'delete', 'read', 'typing', 'presence', 'state', 'error', 'caughtup', 'resync', 'sendfailed']) {
    client.on(t, (e) => events.push({ t, e }));
  }
  return { client, clock, win, urls, sockets: FakeWebSocket.all, events };
}

/** A message object as the relay sends it. */
export function msg(chatId, seq, cursor, body = `m${seq}`, extra = {}) {
  return {
    chat_id: chatId, seq, cursor, body, sender_id: 2, created_at: '2026-11-25T18:00:00+00:00',
    edited_at: null, deleted: false, client_id: null, attachments: [], ...extra,
  };
}

/** The event of a message change. */
export function change(type, m) {
  return { v: 1, type, chat_id: m.chat_id, seq: m.seq, cursor: m.cursor, sender_id: m.sender_id, inline: true, message: m };
}
