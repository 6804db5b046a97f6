// No thundering herd: the clients a relay closes together (close code 1012,
// SIGTERM: the relay is restarting, or a load balancer drains it) or that
// lose their connection together (1006: the relay died, the network
// dropped) come back spread over time, not in one burst onto the relays
// that remain. Many real ChatClients on one manual clock, each with its
// own random source, as browsers have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatClient, restartDelay, backoffDelay } from '../../relay/www/chat-client.js';
import { Clock, FakeWebSocket, flush } from './fakes.mjs';

/** A deterministic random source per client (mulberry32). */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n clients on one clock, all welcomed on their first socket. */
async function herd(n, backoff) {
  FakeWebSocket.all = [];
  const clock = new Clock();
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = new ChatClient({
      url: 'ws://relay.test/ws', token: 'tok', WebSocket: FakeWebSocket,
      setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: () => clock.now,
      random: seeded(1000 + i), window: null, logger: { error() {} }, pingInterval: 0, backoff,
    });
    c.connect().catch(() => {});
    clients.push(c);
  }
  await flush();
  const first = [...FakeWebSocket.all];
  assert.equal(first.length, n);
  for (const s of first) s.welcome();
  await flush();
  return { clock, clients, first };
}

/** When each reconnect socket was made, ms after t0 (watching FakeWebSocket.all while time moves in 10 ms steps). */
async function reconnectTimes(clock, t0, n, until) {
  const times = [];
  let seen = FakeWebSocket.all.length;
  for (let t = 0; t <= until; t += 10) {
    await clock.advance(t === 0 ? 0 : 10);
    for (; seen < FakeWebSocket.all.length; seen++) times.push(clock.now - t0);
  }
  assert.equal(times.length, n, 'every client reconnected once');
  return times;
}

/** The most reconnects within any window of `ms`. */
function peak(times, ms) {
  const s = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i] - s[j] >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

test('restartDelay: uniform from 0 to backoff.restart', () => {
  assert.equal(restartDelay({ restart: 1000 }, () => 0), 0);
  assert.equal(restartDelay({ restart: 1000 }, () => 0.25), 250);
  assert.equal(restartDelay({ restart: 1000 }, () => 0.9999), 1000);
  assert.equal(restartDelay({}, () => 0.5), 500, '1 s by default');
  assert.equal(restartDelay({ restart: 0 }, () => 0.7), 0, 'restart 0: at once, as before');
});

test('200 clients closed together with 1012 come back spread over backoff.restart, not at once', async () => {
  const n = 200;
  const { clock, clients, first } = await herd(n);
  const t0 = clock.now;
  for (const s of first) s.drop(1012, 'relay restarting');
  const delays = clock.delays();
  assert.equal(delays.length, n, 'one reconnect timer per client');
  assert.ok(delays[0] >= 0 && delays[n - 1] <= 1000, `within 0..1000 ms: ${delays[0]}..${delays[n - 1]}`);
  assert.ok(new Set(delays).size > n * 0.8, 'different clients, different delays');
  const times = await reconnectTimes(clock, t0, n, 1000);
  // uniform over 1 s: about 20 per 100 ms; all at once would be 200
  assert.ok(peak(times, 100) <= 45, `at most 45 reconnects in any 100 ms, got ${peak(times, 100)}`);
  assert.ok(times.filter((t) => t < 500).length > n * 0.3 && times.filter((t) => t >= 500).length > n * 0.3,
    'spread over both halves of the second');
  assert.ok(Math.max(...times) <= 1000, 'everyone back within backoff.restart');
  // each is welcomed again (by another relay) and is open
  for (const s of FakeWebSocket.all.slice(n)) s.welcome();
  await flush();
  assert.ok(clients.every((c) => c.state === 'open'));
  for (const c of clients) c.close();
});

test('backoff.restart is an option', async () => {
  const { clock, clients, first } = await herd(50, { restart: 200 });
  for (const s of first) s.drop(1012);
  const delays = clock.delays();
  assert.ok(delays[delays.length - 1] <= 200 && delays.length === 50);
  for (const c of clients) c.close();
});

test('200 clients that lose their connection together (1006) come back spread by the backoff', async () => {
  const n = 200;
  const backoff = { min: 500, max: 30000, factor: 2 };
  const { clock, clients, first } = await herd(n, backoff);
  const t0 = clock.now;
  for (const s of first) s.drop(1006);
  const delays = clock.delays();
  // the first backoff delay with equal jitter: 250 to 500 ms
  assert.ok(delays[0] >= backoffDelay(0, backoff, () => 0) && delays[n - 1] <= backoffDelay(0, backoff, () => 1));
  const times = await reconnectTimes(clock, t0, n, 500);
  assert.ok(peak(times, 50) <= 70, `(about 40 per 50 ms: 250 ms of jitter) at most 70 reconnects in any 50 ms, got ${peak(times, 50)}`);
  // the relays that remain are down too: the next round spreads wider (500 to 1000 ms later)
  const second = FakeWebSocket.all.slice(n);
  for (const s of second) s.drop(1006);
  const next = clock.delays();
  assert.ok(next[0] >= 500 && next[n - 1] <= 1000, `${next[0]}..${next[n - 1]}`);
  for (const c of clients) c.close();
});

test('a 1012 while still connecting (no welcome yet) backs off as a failure', async () => {
  FakeWebSocket.all = [];
  const clock = new Clock();
  const c = new ChatClient({
    url: 'ws://relay.test/ws', token: 'tok', WebSocket: FakeWebSocket, setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout, now: () => clock.now, random: () => 0.5, window: null,
    logger: { error() {} }, pingInterval: 0, backoff: { min: 100, max: 1000, factor: 2 },
  });
  c.connect().catch(() => {});
  await flush();
  FakeWebSocket.all[0].drop(1012);
  assert.deepEqual(clock.delays(), [75]);
  assert.equal(c.attempt, 1);
  c.close();
});
