// chat-client.js: the browser client of chat-relay (WebSocket protocol v1,
// docs/protocol.md). An ES module without dependencies or build step:
//
//   import { ChatClient } from './chat-client.js';
//   const chat = new ChatClient({ url: 'wss://chat.example/ws', token: () => getToken() });
//   chat.on('message', (e) => show(e.message));
//   await chat.connect();
//
// What it guarantees (docs/client.md has the whole API):
// - one socket per client object: a socket is only made when none exists,
//   and every handler of an abandoned socket is detached and ignored;
// - reconnection with exponential backoff and jitter; after close code 1012
//   (relay restarting) within a random 0 to backoff.restart ms (1 s), so the
//   clients a relay closed together do not all come back at the same moment;
//   later after 1013 (overloaded);
// - after every (re)connect and every `resync`, `catch_up` for each chat
//   followed from its cursor (and presence asked again for watched users); live events of a chat wait while it catches up,
//   then everything is deduplicated by (chat_id, seq) and cursor, so each
//   message is announced once, in order, and edits / deletions are applied;
// - sends are queued and retried with the same client_id until acknowledged
//   (the database stores a client_id once), one at a time per chat so they
//   keep their order;
// - every request has a timeout and fails with a ChatError whose `code` is
//   one of the protocol's codes or timeout / closed / disconnected /
//   unsupported / upload_failed, and whose `reason` is the relay's subcode;
// - close() leaves nothing behind: timers, socket handlers, window
//   listeners, object URLs and event listeners are all released.

/** Error codes of ChatError. */
export const ERROR_CODES = Object.freeze([
  'unauthorized', 'forbidden', 'invalid', 'rate_limited', 'too_large', 'unavailable', 'internal',
  'timeout', 'closed', 'disconnected', 'unsupported', 'upload_failed', 'listener', 'protocol',
]);

const RETRYABLE = new Set(['unavailable', 'rate_limited', 'timeout', 'disconnected']);

/**
 * Whether a page (history, catch_up, chats) was cut by the server's byte
 * budget: its last row says `"more": true` (removed here), and the rest
 * follows from that row as from a full page. docs/protocol.md.
 */
function takeMore(rows) {
  const last = rows.length ? rows[rows.length - 1] : null;
  if (!last || last.more !== true) return false;
  delete last.more;
  return true;
}

/**
 * Reasons of the relay's answers that mean it, or its server, cannot do the
 * request at all (retrying won't change that): the client's `unsupported`.
 */
const UNSUPPORTED_REASONS = new Set(['unknown_type', 'not_configured']);

/**
 * A failed request or operation; `code` is one of ERROR_CODES. `reason` is
 * the relay's machine-readable subcode (`token_invalid`, `not_configured`,
 * … see docs/protocol.md) when the error is its answer, else null.
 */
export class ChatError extends Error {
  constructor(code, message, { type = null, reason = null, cause } = {}) {
    super(message || code, cause === undefined ? undefined : { cause });
    this.name = 'ChatError';
    this.code = code;
    this.reason = reason;
    this.type = type; // the request type, when the error answers a request
    this.retryable = RETRYABLE.has(code);
  }
}

/**
 * The delay before reconnect attempt `attempt` (0, 1, 2 …): exponential
 * from `min` by `factor` up to `max`, with "equal jitter" (half fixed, half
 * random) so that clients dropped together do not come back together.
 */
export function backoffDelay(attempt, { min = 500, max = 30000, factor = 2 } = {}, random = Math.random) {
  const d = Math.min(max, min * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(d / 2 + random() * (d / 2));
}

/**
 * The delay before reconnecting after close code 1012 (the relay is
 * restarting): uniform ("full jitter") from 0 to `restart` ms, so that the
 * clients of a relay, which it closed all together, reconnect spread over
 * that time instead of in one burst.
 */
export function restartDelay({ restart = 1000 } = {}, random = Math.random) {
  return Math.round(random() * Math.max(0, restart));
}

/**
 * The bytes of a base64url text (padding optional), e.g. the welcome's
 * vapid_public_key as PushManager.subscribe's applicationServerKey.
 * Throws a TypeError on a character outside the alphabet.
 */
export function base64UrlToBytes(text) {
  const s = String(text).replace(/=+$/, '');
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new TypeError('not base64url');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function defaultUuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// headers a browser sets itself and refuses from scripts
const FORBIDDEN_HEADERS = new Set(['content-length', 'host', 'connection', 'expect']);

const WS_CONNECTING = 0;
const WS_OPEN = 1;

export class ChatClient {
  /**
   * @param {object} o
   * @param {string} o.url                 ws:// or wss:// URL of the relay's /ws
   * @param {string|function} o.token      a JWT, or a (possibly async) function returning one; called before each connection
   * @param {number} [o.requestTimeout]    ms before a request fails with `timeout` (10000)
   * @param {number} [o.connectTimeout]    ms for a connection to say welcome (10000)
   * @param {number} [o.sendTimeout]       ms a send may wait and retry before it fails (60000)
   * @param {object} [o.backoff]           {min, max, factor, slow, restart}: reconnect delays, ms (500, 30000, 2,
   *                                       at least 5000 after 1013, random 0 to 1000 after 1012)
   * @param {number} [o.typingInterval]    ms between two typing notices of one chat (3000)
   * @param {number} [o.pingInterval]      ms of silence before a ping checks the connection (25000; 0: never)
   * @param {number} [o.tokenRefreshMargin] s before expiry to renew the token with `auth` (60; token functions only)
   * @param {boolean} [o.autoFollow]       follow chats that events come from (true)
   * @param {number} [o.seenLimit]         (chat, seq) pairs remembered per chat for deduplication (5000)
   * Injectable for tests: WebSocket, setTimeout, clearTimeout, random, now, uuid, fetch, URL, window, logger.
   */
  constructor(o = {}) {
    if (!o.url) throw new TypeError('ChatClient: url is required');
    if (!o.token) throw new TypeError('ChatClient: token is required');
    this.url = o.url;
    this._token = o.token;
    this._WS = o.WebSocket || globalThis.WebSocket;
    this._setTimeout = o.setTimeout || globalThis.setTimeout.bind(globalThis);
    this._clearTimeout = o.clearTimeout || globalThis.clearTimeout.bind(globalThis);
    this._random = o.random || Math.random;
    this._now = o.now || (() => Date.now());
    this._uuid = o.uuid || defaultUuid;
    this._fetch = o.fetch || (globalThis.fetch ? globalThis.fetch.bind(globalThis) : null);
    this._URL = o.URL || globalThis.URL;
    this._window = o.window !== undefined ? o.window : (typeof window !== 'undefined' ? window : null);
    this._logger = o.logger || globalThis.console;
    this.requestTimeout = o.requestTimeout ?? 10000;
    this.connectTimeout = o.connectTimeout ?? 10000;
    this.sendTimeout = o.sendTimeout ?? 60000;
    this.backoff = { min: 500, max: 30000, factor: 2, slow: 5000, restart: 1000, ...(o.backoff || {}) };
    this.typingInterval = o.typingInterval ?? 3000;
    this.pingInterval = o.pingInterval ?? 25000;
    this.tokenRefreshMargin = o.tokenRefreshMargin ?? 60;
    this.autoFollow = o.autoFollow ?? true;
    this.seenLimit = o.seenLimit ?? 5000;

    this.state = 'idle'; // idle | connecting | open | reconnecting | closed
    this.userId = null;
    this.relayId = null;
    this.expiresAt = null;
    this.vapidPublicKey = null; // the relay's Web Push key (welcome), or null: no push
    this.attempt = 0; // failed connection attempts since the last welcome

    this._listeners = new Map(); // type -> Set(fn)
    this._timers = new Set(); // every live timer id
    this._ws = null; // the one socket
    this._gen = 0; // bumps when a socket is abandoned: stale handlers compare
    this._nextId = 0;
    this._inflight = new Map(); // id -> request
    this._outbox = []; // requests waiting for the connection
    this._pending = new Map(); // client_id -> pending send, in send order
    this._chats = new Map(); // chat_id -> {cursor, floor, seen, syncing, buffer, retry}
    this._presence = new Map(); // user_id -> {user_id, online, last_seen}
    this._watched = new Set(); // user ids whose presence is asked after each connect
    this._typingAt = new Map(); // chat_id -> ms of the last typing notice
    this._objectUrls = new Set();
    this._urlCache = new Map(); // attachment_id -> {url, at}
    this._waiters = new Set(); // connect() promises
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._pingTimer = null;
    this._refreshTimer = null;
    this._lastRx = 0;
    this._onOnline = () => {
      if (this.state === 'reconnecting') this._reconnectNow();
    };
    if (this._window && typeof this._window.addEventListener === 'function') {
      this._window.addEventListener('online', this._onOnline);
    }
  }

  // ---- events -------------------------------------------------------------

  /** Listen to an event; returns a function that stops listening. */
  on(type, fn) {
    if (this.state === 'closed') return () => {};
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) {
      set.delete(fn);
      if (set.size === 0) this._listeners.delete(type);
    }
  }

  /** Listeners registered (all types, or one). */
  listenerCount(type) {
    if (type !== undefined) return this._listeners.get(type)?.size || 0;
    let n = 0;
    for (const s of this._listeners.values()) n += s.size;
    return n;
  }

  _emit(type, ev) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(ev);
      } catch (err) {
        // a broken listener never breaks the client (or the other listeners)
        if (type === 'error') this._logger?.error?.('chat-client: error listener threw', err);
        else this._emit('error', new ChatError('listener', `a "${type}" listener threw: ${err && err.message}`, { cause: err }));
      }
    }
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit('state', { state, attempt: this.attempt, ...extra });
  }

  // ---- timers -------------------------------------------------------------

  _timer(fn, ms) {
    const id = this._setTimeout(() => {
      this._timers.delete(id);
      try {
        fn();
      } catch (err) {
        this._emit('error', new ChatError('internal', `timer failed: ${err && err.message}`, { cause: err }));
      }
    }, Math.max(0, ms));
    this._timers.add(id);
    return id;
  }

  _cancel(id) {
    if (id != null && this._timers.delete(id)) this._clearTimeout(id);
    return null;
  }

  /** Timers alive now (0 after close()). */
  get timerCount() {
    return this._timers.size;
  }

  // ---- connection ---------------------------------------------------------

  /**
   * Connect (once; calling again while connecting or open does nothing new).
   * Resolves with the welcome; with `timeout` (ms) rejects with `timeout`
   * if not connected by then (reconnection goes on).
   */
  connect({ timeout } = {}) {
    if (this.state === 'closed') return Promise.reject(new ChatError('closed', 'the client is closed'));
    if (this.state === 'open') return Promise.resolve(this._welcome);
    const p = new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      if (timeout != null) {
        w.timer = this._timer(() => {
          this._waiters.delete(w);
          reject(new ChatError('timeout', `not connected within ${timeout} ms`));
        }, timeout);
      }
      this._waiters.add(w);
    });
    if (this.state === 'idle') this._open();
    return p;
  }

  async _open() {
    if (this.state === 'closed' || this._ws || this.state === 'connecting') return;
    this._reconnectTimer = this._cancel(this._reconnectTimer);
    const gen = ++this._gen;
    this._setState('connecting');
    let token;
    try {
      token = typeof this._token === 'function' ? await this._token() : this._token;
      if (!token) throw new Error('no token');
    } catch (err) {
      if (gen !== this._gen || this.state === 'closed') return;
      this._emit('error', new ChatError('unauthorized', `cannot get a token: ${err && err.message}`, { cause: err }));
      this._scheduleReconnect(null);
      return;
    }
    if (gen !== this._gen || this.state === 'closed' || this._ws) return;
    const url = this.url + (this.url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(token);
    let ws;
    try {
      ws = new this._WS(url);
    } catch (err) {
      this._emit('error', new ChatError('disconnected', `cannot open a WebSocket: ${err && err.message}`, { cause: err }));
      this._scheduleReconnect(null);
      return;
    }
    this._ws = ws;
    ws.onmessage = (e) => {
      if (gen === this._gen) this._onFrame(e.data);
    };
    ws.onclose = (e) => {
      if (gen === this._gen) this._onClose(e.code, e.reason);
    };
    ws.onerror = () => {}; // a close event always follows
    this._connectTimer = this._timer(() => {
      this._connectTimer = null;
      if (gen === this._gen) this._drop(4000, 'no welcome in time');
    }, this.connectTimeout);
  }

  /** Abandon the socket now (dead or too slow) and reconnect. */
  _drop(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._detach(ws);
    try {
      ws.close(4000, reason);
    } catch (_) { /* already closing */ }
    this._onClose(code, reason);
  }

  _detach(ws) {
    this._gen++;
    ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
    if (this._ws === ws) this._ws = null;
  }

  _onClose(code, reason) {
    const ws = this._ws;
    if (ws) this._detach(ws);
    const wasOpen = this.state === 'open';
    this._connectTimer = this._cancel(this._connectTimer);
    this._pingTimer = this._cancel(this._pingTimer);
    this._refreshTimer = this._cancel(this._refreshTimer);
    // answers to requests of the lost socket will never come
    const lost = [...this._inflight.values()];
    this._inflight.clear();
    for (const r of lost) this._settle(r, new ChatError('disconnected', `connection lost before the ${r.type} answer`, { type: r.type }));
    for (const ch of this._chats.values()) {
      ch.syncing = false;
      ch.buffer = [];
      ch.retry = this._cancel(ch.retry);
    }
    if (this.state === 'closed') return;
    this._emit('disconnect', { code, reason, wasOpen });
    this._scheduleReconnect(code, wasOpen);
  }

  _scheduleReconnect(code, wasOpen = false) {
    if (this.state === 'closed') return;
    let delay;
    if (code === 1012 && wasOpen) {
      // The relay is restarting (SIGTERM) and closed all its clients at the
      // same moment: come back soon (to any relay, the load balancer
      // chooses), but each at a random moment within backoff.restart, not
      // all at once onto the relays that remain (a thundering herd of
      // handshakes and catch-ups). The attempt count stays: a failure from
      // here backs off from the first delay.
      delay = restartDelay(this.backoff, this._random);
    } else {
      delay = backoffDelay(this.attempt, this.backoff, this._random);
      if (code === 1013) delay = Math.max(delay, this.backoff.slow);
      this.attempt++;
    }
    this._reconnectTimer = this._cancel(this._reconnectTimer);
    this._setState('reconnecting', { delay, code });
    this._reconnectTimer = this._timer(() => {
      this._reconnectTimer = null;
      this._open();
    }, delay);
  }

  _reconnectNow() {
    this._reconnectTimer = this._cancel(this._reconnectTimer);
    this._open();
  }

  _onWelcome(w) {
    this._connectTimer = this._cancel(this._connectTimer);
    this._welcome = w;
    this.userId = w.user_id;
    this.relayId = w.relay_id;
    this.expiresAt = w.expires_at || null;
    this.vapidPublicKey = typeof w.vapid_public_key === 'string' && w.vapid_public_key ? w.vapid_public_key : null;
    this.attempt = 0;
    this._setState('open', { relayId: w.relay_id });
    for (const wt of [...this._waiters]) {
      this._cancel(wt.timer);
      wt.resolve(w);
    }
    this._waiters.clear();
    this._emit('welcome', w);
    this._schedulePing();
    this._scheduleRefresh();
    // requests made while away, then sends, then catch up and presence
    const out = this._outbox;
    this._outbox = [];
    for (const r of out) this._transmit(r);
    for (const p of this._pending.values()) p.retryTimer = this._cancel(p.retryTimer);
    this._pumpSends();
    for (const [chatId, ch] of this._chats) if (ch.cursor != null) this._catchUp(chatId);
    if (this._watched.size) this.presence([...this._watched]).catch(() => {});
  }

  _schedulePing() {
    this._pingTimer = this._cancel(this._pingTimer);
    if (!this.pingInterval) return;
    this._pingTimer = this._timer(() => {
      this._pingTimer = null;
      if (this.state !== 'open') return;
      const idle = this._now() - this._lastRx;
      if (idle < this.pingInterval) {
        this._pingTimer = this._timer(() => this._schedulePing(), this.pingInterval - idle);
        return;
      }
      const gen = this._gen;
      this.request('ping', {}).then(
        () => { if (gen === this._gen) this._schedulePing(); },
        (err) => { if (gen === this._gen && err.code === 'timeout') this._drop(4000, 'ping timeout'); },
      );
    }, this.pingInterval);
  }

  _scheduleRefresh() {
    this._refreshTimer = this._cancel(this._refreshTimer);
    if (typeof this._token !== 'function' || !this.expiresAt) return;
    const at = this.expiresAt * 1000 - this.tokenRefreshMargin * 1000;
    this._refreshTimer = this._timer(async () => {
      this._refreshTimer = null;
      const gen = this._gen;
      try {
        const token = await this._token();
        if (gen !== this._gen || this.state !== 'open') return;
        const r = await this.request('auth', { token });
        if (gen !== this._gen) return;
        this.expiresAt = r.expires_at;
        this._scheduleRefresh();
      } catch (err) {
        // the relay closes with 1008 at expiry; the reconnect takes a new token
        this._emit('error', err instanceof ChatError ? err : new ChatError('unauthorized', String(err), { cause: err }));
      }
    }, Math.max(1000, at - this._now()));
  }

  /** Close for good: nothing stays behind (timers, handlers, listeners, object URLs). */
  close() {
    if (this.state === 'closed') return;
    const ws = this._ws;
    if (ws) {
      this._detach(ws);
      try {
        if (ws.readyState === WS_CONNECTING || ws.readyState === WS_OPEN) ws.close(1000, 'client closed');
      } catch (_) { /* ignore */ }
    }
    this._gen++;
    for (const id of this._timers) this._clearTimeout(id);
    this._timers.clear();
    this._reconnectTimer = this._connectTimer = this._pingTimer = this._refreshTimer = null;
    const err = () => new ChatError('closed', 'the client was closed');
    const reqs = [...this._inflight.values(), ...this._outbox];
    this._inflight.clear();
    this._outbox = [];
    for (const r of reqs) r.reject(err());
    const sends = [...this._pending.values()];
    this._pending.clear();
    for (const p of sends) p.reject(err());
    for (const w of this._waiters) w.reject(err());
    this._waiters.clear();
    if (this._window && typeof this._window.removeEventListener === 'function') {
      this._window.removeEventListener('online', this._onOnline);
    }
    for (const u of this._objectUrls) {
      try { this._URL.revokeObjectURL(u); } catch (_) { /* ignore */ }
    }
    this._objectUrls.clear();
    this._chats.clear();
    this._presence.clear();
    this._watched.clear();
    this._typingAt.clear();
    this._urlCache.clear();
    // last: a `state` listener sees a client that holds nothing any more
    this._setState('closed');
    this._listeners.clear();
  }

  // ---- frames -------------------------------------------------------------

  _onFrame(data) {
    this._lastRx = this._now();
    let m;
    try {
      m = JSON.parse(data);
    } catch (err) {
      this._emit('error', new ChatError('protocol', 'a frame that is not JSON', { cause: err }));
      return;
    }
    if (!m || typeof m !== 'object') return;
    try {
      switch (m.type) {
        case 'welcome':
          this._onWelcome(m);
          break;
        case 'ok':
        case 'error':
          this._onAnswer(m);
          break;
        case 'message':
        case 'edit':
        case 'delete':
          this._onChange(m);
          break;
        case 'read':
          this._emit('read', { chat_id: m.chat_id, user_id: m.user_id, seq: m.seq });
          break;
        case 'typing':
          this._emit('typing', { chat_id: m.chat_id, user_id: m.user_id });
          break;
        case 'presence':
          this._onPresence(m);
          break;
        case 'resync':
          this._emit('resync', { reason: m.reason });
          // a catch_up under way may have read before what was missed: once more after it
          for (const [chatId, ch] of this._chats) {
            if (ch.cursor == null) continue;
            if (ch.syncing) ch.again = true;
            else this._catchUp(chatId);
          }
          // presence changes may have been missed too
          if (this._watched.size) this.presence([...this._watched]).catch(() => {});
          break;
        default:
          this._emit(m.type, m);
      }
    } catch (err) {
      this._emit('error', new ChatError('internal', `handling a ${m.type} frame failed: ${err && err.message}`, { cause: err }));
    }
  }

  _onAnswer(m) {
    const r = this._inflight.get(m.id);
    if (!r) return; // timed out earlier, or not ours
    this._inflight.delete(m.id);
    if (m.type === 'ok') this._settle(r, null, m.result);
    else {
      const reason = typeof m.reason === 'string' ? m.reason : null;
      let code = ERROR_CODES.includes(m.code) ? m.code : 'internal';
      // the message text is for people: only code and reason are read
      if (UNSUPPORTED_REASONS.has(reason)) code = 'unsupported';
      this._settle(r, new ChatError(code, m.message, { type: r.type, reason }));
    }
  }

  _settle(r, err, result) {
    r.timer = this._cancel(r.timer);
    if (err) r.reject(err);
    else r.resolve(result);
  }

  // ---- requests -----------------------------------------------------------

  /**
   * One request of the protocol; resolves with its `result`, rejects with a
   * ChatError. Made while disconnected, it waits for the connection (within
   * its timeout).
   */
  request(type, params = {}, { timeout = this.requestTimeout } = {}) {
    if (this.state === 'closed') return Promise.reject(new ChatError('closed', 'the client is closed', { type }));
    return new Promise((resolve, reject) => {
      const id = ++this._nextId;
      const r = { id, type, frame: JSON.stringify({ ...params, type, id }), resolve, reject, timer: null };
      r.timer = this._timer(() => {
        r.timer = null;
        this._inflight.delete(id);
        const i = this._outbox.indexOf(r);
        if (i >= 0) this._outbox.splice(i, 1);
        reject(new ChatError('timeout', `no answer to ${type} within ${timeout} ms`, { type }));
      }, timeout);
      if (this.state === 'open' && this._ws) this._transmit(r);
      else this._outbox.push(r);
    });
  }

  _transmit(r) {
    this._inflight.set(r.id, r);
    try {
      this._ws.send(r.frame);
    } catch (err) {
      this._inflight.delete(r.id);
      this._settle(r, new ChatError('disconnected', `cannot send ${r.type}: ${err && err.message}`, { type: r.type }));
    }
  }

  // ---- chats, dedup and catch-up -----------------------------------------

  _chat(chatId, create = true) {
    let ch = this._chats.get(chatId);
    if (!ch && create) {
      ch = { cursor: null, floor: null, seen: new Map(), syncing: false, again: false, buffer: [], retry: null, failures: 0 };
      this._chats.set(chatId, ch);
    }
    return ch;
  }

  /**
   * Follow a chat: its changes are deduplicated, and after every reconnect
   * it catches up from its cursor. `cursor`: the last change the app has
   * (from an event, catch_up or a stored value); `lastSeq`: the newest seq
   * the app knows (messages up to it are history, later ones are new).
   * Without a cursor the chat starts catching up once one is known (from an
   * event or from history()).
   */
  follow(chatId, { cursor = null, lastSeq = null } = {}) {
    if (this.state === 'closed') return;
    const ch = this._chat(chatId);
    if (ch.cursor == null && cursor != null) ch.cursor = cursor;
    if (ch.floor == null && lastSeq != null) ch.floor = lastSeq;
    if (ch.floor == null && cursor != null) ch.floor = 0;
    if (cursor != null && this.state === 'open' && !ch.syncing) this._catchUp(chatId);
  }

  unfollow(chatId) {
    const ch = this._chats.get(chatId);
    if (ch) this._cancel(ch.retry);
    this._chats.delete(chatId);
  }

  /** The cursor of a followed chat (null: unknown). */
  cursor(chatId) {
    return this._chats.get(chatId)?.cursor ?? null;
  }

  /** {chat_id: cursor} of every followed chat with a cursor (to store and pass to follow()). */
  cursors() {
    const out = {};
    for (const [id, ch] of this._chats) if (ch.cursor != null) out[id] = ch.cursor;
    return out;
  }

  _onChange(ev) {
    const chatId = ev.chat_id;
    let ch = this._chats.get(chatId);
    if (!ch) {
      if (!this.autoFollow) return;
      ch = this._chat(chatId);
    }
    if (ch.syncing) {
      ch.buffer.push(ev);
      return;
    }
    if (!ev.inline || !ev.message) {
      // not expected from the relay (it fetches large messages), but safe
      if (ch.cursor != null) this._catchUp(chatId);
      return;
    }
    if (ch.floor == null) ch.floor = ev.type === 'message' ? ev.seq - 1 : ev.seq;
    if (ch.cursor != null && ev.cursor <= ch.cursor) return; // already applied
    if (ch.cursor != null && ev.cursor > ch.cursor + 1) {
      // Every change moves a chat's cursor by one: a jump means changes were
      // missed, or a cursor the chat cannot have. The database decides; an
      // event still ahead of it after catching up is not trusted.
      if (!ev.gapChecked) {
        ch.buffer.push({ ...ev, gapChecked: true });
        this._catchUp(chatId);
      }
      return;
    }
    this._apply(chatId, ch, ev.message, 'event');
    ch.cursor = ch.cursor == null ? ev.cursor : Math.max(ch.cursor, ev.cursor);
  }

  /**
   * Deduplicate one message state and announce it: `message` for a seq not
   * seen above the floor, `edit` / `delete` for a newer state of a known (or
   * older) one, nothing for a state already seen. Returns the event type.
   */
  _apply(chatId, ch, msg, source) {
    const seq = msg.seq;
    const cursor = msg.cursor ?? 0;
    const known = ch.seen.get(seq);
    let type;
    if (known !== undefined) {
      if (cursor <= known) return null;
      type = msg.deleted ? 'delete' : 'edit';
    } else if (ch.floor == null || seq > ch.floor) {
      type = 'message';
    } else {
      type = msg.deleted ? 'delete' : 'edit';
    }
    this._remember(ch, seq, cursor);
    this._emit(type, { type, chat_id: chatId, seq, cursor, message: msg, source });
    return type;
  }

  _remember(ch, seq, cursor) {
    const known = ch.seen.get(seq);
    if (known === undefined || cursor > known) ch.seen.set(seq, cursor);
    if (ch.seen.size > this.seenLimit * 1.25) {
      const seqs = [...ch.seen.keys()].sort((a, b) => a - b);
      const drop = seqs.slice(0, seqs.length - this.seenLimit);
      for (const s of drop) ch.seen.delete(s);
      ch.floor = Math.max(ch.floor ?? 0, drop[drop.length - 1]);
    }
  }

  async _catchUp(chatId) {
    const ch = this._chats.get(chatId);
    if (!ch || ch.cursor == null || this.state !== 'open') return;
    ch.retry = this._cancel(ch.retry);
    ch.syncing = true;
    ch.again = false;
    const gen = this._gen;
    let count = 0;
    try {
      for (;;) {
        const rows = await this.request('catch_up', { chat_id: chatId, after: ch.cursor, page_size: 500 });
        if (gen !== this._gen || this._chats.get(chatId) !== ch) return;
        const more = takeMore(rows);
        for (const m of rows) {
          if (ch.floor == null) ch.floor = 0;
          if (this._apply(chatId, ch, m, 'catch_up')) count++;
          if (m.cursor > ch.cursor) ch.cursor = m.cursor;
        }
        if (rows.length < 500 && !more) break;
      }
    } catch (err) {
      if (gen !== this._gen || this._chats.get(chatId) !== ch || this.state === 'closed') return;
      ch.syncing = false;
      ch.buffer = []; // the next catch_up fetches them again
      if (err.code === 'forbidden') {
        this._chats.delete(chatId);
      } else if (this.state === 'open') {
        ch.failures++;
        ch.retry = this._timer(() => {
          ch.retry = null;
          this._catchUp(chatId);
        }, backoffDelay(ch.failures, this.backoff, this._random));
      }
      this._emit('error', err);
      return;
    }
    ch.failures = 0;
    ch.syncing = false;
    const buffered = ch.buffer;
    ch.buffer = [];
    for (const ev of buffered) this._onChange(ev);
    this._emit('caughtup', { chat_id: chatId, count, cursor: ch.cursor });
    if (ch.again) this._catchUp(chatId);
  }

  // ---- API ----------------------------------------------------------------

  /**
   * Send a message. Resolves with the stored message (the `message` event
   * with the same client_id announces it, like anyone's); retried with the
   * same client_id across reconnects and `unavailable` answers until
   * `sendTimeout`. Sends of one chat go one at a time, in order.
   */
  send(chatId, body, { clientId, attachmentIds } = {}) {
    if (this.state === 'closed') return Promise.reject(new ChatError('closed', 'the client is closed', { type: 'send' }));
    const id = clientId || this._uuid();
    const existing = this._pending.get(id);
    if (existing) return existing.promise;
    const p = { chatId, body, clientId: id, attachmentIds: attachmentIds || null, inflight: false, tries: 0, retryTimer: null };
    p.promise = new Promise((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    p.timer = this._timer(() => {
      p.timer = null;
      this._failSend(p, new ChatError('timeout', `message not sent within ${this.sendTimeout} ms`, { type: 'send' }));
    }, this.sendTimeout);
    this._pending.set(id, p);
    // the message ends the "typing" shown to others: the next keystroke may say so again
    this._typingAt.delete(chatId);
    this._emit('pending', { chat_id: chatId, client_id: id, body, attachment_ids: p.attachmentIds });
    this._pumpSends();
    return p.promise;
  }

  /** A fresh client_id (uuid v4) for send(). */
  newClientId() {
    return this._uuid();
  }

  /** Sends not yet acknowledged: [{chat_id, client_id, body}]. */
  pending() {
    return [...this._pending.values()].map((p) => ({ chat_id: p.chatId, client_id: p.clientId, body: p.body }));
  }

  _pumpSends() {
    if (this.state !== 'open') return;
    const busy = new Set();
    for (const p of this._pending.values()) {
      if (busy.has(p.chatId)) continue;
      busy.add(p.chatId);
      if (!p.inflight && !p.retryTimer) this._attemptSend(p);
    }
  }

  _attemptSend(p) {
    p.inflight = true;
    p.tries++;
    const params = { chat_id: p.chatId, body: p.body, client_id: p.clientId };
    if (p.attachmentIds && p.attachmentIds.length) params.attachment_ids = p.attachmentIds;
    this.request('send', params).then(
      (msg) => {
        if (this._pending.get(p.clientId) !== p) return;
        this._pending.delete(p.clientId);
        p.timer = this._cancel(p.timer);
        // The `message` event (or a catch_up) announces it, in the chat's
        // order: an answer can overtake the events of earlier messages.
        p.resolve(msg);
        this._pumpSends();
      },
      (err) => {
        p.inflight = false;
        if (this._pending.get(p.clientId) !== p) return;
        if (!err.retryable) {
          this._failSend(p, err);
          return;
        }
        if (this.state === 'open') {
          // still connected: try again a little later (same client_id)
          const delay = err.code === 'rate_limited' ? Math.max(1000, this.backoff.min) : backoffDelay(p.tries - 1, this.backoff, this._random);
          p.retryTimer = this._timer(() => {
            p.retryTimer = null;
            this._pumpSends();
          }, delay);
        } // otherwise the next welcome retries it
      },
    );
  }

  _failSend(p, err) {
    if (this._pending.get(p.clientId) !== p) return;
    this._pending.delete(p.clientId);
    p.timer = this._cancel(p.timer);
    p.retryTimer = this._cancel(p.retryTimer);
    this._emit('sendfailed', { chat_id: p.chatId, client_id: p.clientId, body: p.body, error: err });
    p.reject(err);
    this._pumpSends();
  }

  /** Edit one's message; the `edit` event announces it to every member (this one too). */
  edit(chatId, seq, body) {
    return this.request('edit', { chat_id: chatId, seq, body });
  }

  /** Delete one's message; the `delete` event announces it. */
  deleteMessage(chatId, seq) {
    return this.request('delete', { chat_id: chatId, seq });
  }

  /**
   * A page of history, newest first (before_seq: older than it). Its
   * messages count as seen; the newest page of a followed chat without a
   * cursor gives it one. A page the server cut at its byte budget is
   * continued, so fewer than pageSize rows means the oldest was reached.
   */
  async history(chatId, { beforeSeq = null, pageSize = 50 } = {}) {
    const rows = [];
    for (let before = beforeSeq; ;) {
      const params = { chat_id: chatId, page_size: pageSize - rows.length };
      if (before != null) params.before_seq = before;
      const page = await this.request('history', params);
      const more = takeMore(page);
      rows.push(...page);
      if (!more || rows.length >= pageSize) break;
      before = page[page.length - 1].seq;
    }
    const ch = this._chats.get(chatId) || (this.autoFollow ? this._chat(chatId) : null);
    if (ch) {
      for (const m of rows) this._remember(ch, m.seq, m.cursor ?? 0);
      if (beforeSeq == null) {
        const maxSeq = rows.reduce((a, m) => Math.max(a, m.seq), 0);
        const maxCursor = rows.reduce((a, m) => Math.max(a, m.cursor ?? 0), 0);
        if (ch.floor == null) ch.floor = maxSeq;
        if (ch.cursor == null && !ch.syncing) ch.cursor = maxCursor;
      }
    }
    return rows;
  }

  /** The user's chats (list_chats); a page cut at the byte budget is continued, as in history(). */
  async chats({ before = null, pageSize = 50, archived = false } = {}) {
    const rows = [];
    for (let from = before; ;) {
      const params = { page_size: pageSize - rows.length, archived };
      if (from != null) params.before = from;
      const page = await this.request('chats', params);
      const more = takeMore(page);
      rows.push(...page);
      if (!more || rows.length >= pageSize) return rows;
      from = page[page.length - 1].cursor;
    }
  }

  /** Get or create a chat; resolves with its id. */
  open(kind, peerId, contextId = null) {
    const params = { kind, peer_id: peerId };
    if (contextId != null) params.context_id = contextId;
    return this.request('open', params);
  }

  /** Move the read cursor (others get a read receipt). */
  markRead(chatId, seq) {
    return this.request('read', { chat_id: chatId, seq });
  }

  unread() {
    return this.request('unread', {});
  }

  /**
   * Tell the chat's other members that the user is typing: at most once per
   * typingInterval per chat, only while connected. Returns whether a notice
   * went out; never rejects.
   */
  typing(chatId) {
    if (this.state !== 'open') return false;
    const now = this._now();
    const last = this._typingAt.get(chatId);
    if (last !== undefined && now - last < this.typingInterval) return false;
    this._typingAt.set(chatId, now);
    this.request('typing', { chat_id: chatId }).catch(() => {});
    return true;
  }

  /**
   * Presence of users: only the user's contacts (both have written in a
   * chat they share, and neither blocked the other) are answered. This
   * connection then hears of their changes as `presence` events, unless
   * `{subscribe: false}`; each answer is also emitted as `presence`.
   */
  async presence(userIds, { subscribe = true } = {}) {
    const rows = await this.request('presence', subscribe ? { user_ids: userIds } : { user_ids: userIds, subscribe: false });
    for (const p of rows) this._onPresence(p);
    return rows;
  }

  /** Ask for these users' presence now and after every reconnect. */
  watchPresence(userIds) {
    for (const id of userIds) this._watched.add(id);
    if (this.state === 'open') return this.presence([...userIds]).catch(() => []);
    return Promise.resolve([]);
  }

  /** The last presence known for a user, or null. */
  presenceOf(userId) {
    return this._presence.get(userId) || null;
  }

  _onPresence(m) {
    const p = { user_id: m.user_id, online: !!m.online, last_seen: m.last_seen ?? null, version: m.version ?? 0 };
    // A presence() reply read just before a change can arrive after that
    // change's event: version grows with every change, the higher one wins
    // (last_seen is rounded, two changes can share it).
    const known = this._presence.get(p.user_id);
    if (known && known.version > p.version) return;
    this._presence.set(p.user_id, p);
    this._emit('presence', p);
  }

  // ---- push devices -------------------------------------------------------

  /**
   * Register a push device for the user: kind 'webpush' with the browser's
   * PushSubscription (or its toJSON()), 'fcm' or 'apns' with their token
   * objects. Resolves with the device id; the same token again gives the
   * same id. A malformed token fails with `invalid`.
   */
  registerDevice(kind, token) {
    const t = token && typeof token.toJSON === 'function' ? token.toJSON() : token;
    if (t === null || typeof t !== 'object' || Array.isArray(t)) {
      return Promise.reject(new ChatError('invalid', 'registerDevice: token must be an object', { type: 'register_device' }));
    }
    return this.request('register_device', { kind, token: t });
  }

  /** Remove one of the user's devices (another's: `forbidden`). */
  unregisterDevice(deviceId) {
    return this.request('unregister_device', { device_id: deviceId });
  }

  // ---- attachments --------------------------------------------------------

  /**
   * Upload a file (Blob / File) to the chat's object store: the relay's
   * `upload` request returns a presigned PUT URL, the bytes go straight to
   * the store. Resolves with {id, name, content_type, size}; pass the id in
   * send(…, {attachmentIds}). Fails with `unsupported` when the relay has
   * no object store.
   */
  async upload(chatId, file, { signal } = {}) {
    if (!this._fetch) throw new ChatError('unsupported', 'no fetch() to upload with');
    const name = file.name || 'file';
    const type = file.type || 'application/octet-stream';
    const r = await this.request('upload', { chat_id: chatId, file_name: name, content_type: type, size: file.size });
    const headers = {};
    for (const [k, v] of Object.entries(r.headers || {})) if (!FORBIDDEN_HEADERS.has(k.toLowerCase())) headers[k] = v;
    let res;
    try {
      res = await this._fetch(r.url, { method: r.method || 'PUT', headers, body: file, signal });
    } catch (err) {
      throw new ChatError('upload_failed', `upload failed: ${err && err.message}`, { cause: err });
    }
    if (!res.ok) throw new ChatError('upload_failed', `the object store answered ${res.status}`);
    return { id: r.attachment_id, name, content_type: type, size: file.size };
  }

  /** A signed URL to show or download an attachment (cached for a minute). */
  async attachmentUrl(attachmentId, { inline = true } = {}) {
    const hit = this._urlCache.get(attachmentId);
    if (hit && this._now() - hit.at < 60000) return hit.url;
    const url = await this.request('attachment_url', { attachment_id: attachmentId, inline });
    if (this.state !== 'closed') this._urlCache.set(attachmentId, { url, at: this._now() });
    return url;
  }

  /** An object URL previewing a local file; revoked by revokePreview() or close(). */
  previewUrl(blob) {
    const u = this._URL.createObjectURL(blob);
    if (this.state === 'closed') {
      this._URL.revokeObjectURL(u);
      return null;
    }
    this._objectUrls.add(u);
    return u;
  }

  revokePreview(url) {
    if (url && this._objectUrls.delete(url)) this._URL.revokeObjectURL(url);
  }

  /** Object URLs alive now (0 after close()). */
  get objectUrlCount() {
    return this._objectUrls.size;
  }
}

export default ChatClient;
