// Connection handling of chat-client.js: one socket, backoff with jitter,
// close codes, token per connection, the browser's `online` event, pings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../relay/www/chat-client.js';
import { makeClient, flush } from './fakes.mjs';

const live = (sockets) => sockets.filter((s) => s.readyState !== 3 && s.handlersAttached);

test('backoffDelay: exponential, capped, with equal jitter', () => {
  const b = { min: 100, max: 1000, factor: 2 };
  assert.equal(backoffDelay(0, b, () => 0), 50);
  assert.equal(backoffDelay(0, b, () => 1), 100);
  assert.equal(backoffDelay(1, b, () => 0.5), 150);
  assert.equal(backoffDelay(3, b, () => 1), 800);
  assert.equal(backoffDelay(10, b, () => 1), 1000);
  assert.equal(backoffDelay(10, b, () => 0), 500);
  // jitter spreads clients: different random, different delays
  const ds = new Set([0.1, 0.3, 0.7, 0.9].map((r) => backoffDelay(4, b, () => r)));
  assert.equal(ds.size, 4);
});

test('connect() twice, even while the token is fetched, makes one socket', async () => {
  let release;
  const tokenGate = new Promise((r) => { release = r; });
  const { client, sockets } = makeClient({ token: async () => { await tokenGate; return 'tok'; } });
  const a = client.connect();
  const b = client.connect();
  client.connect().catch(() => {});
  await flush();
  assert.equal(sockets.length, 0, 'no socket before the token');
  release();
  await flush();
  assert.equal(sockets.length, 1);
  assert.match(sockets[0].url, /^ws:\/\/relay\.test\/ws\?access_token=tok$/);
  sockets[0].welcome(7);
  const [wa, wb] = await Promise.all([a, b]);
  assert.equal(wa.user_id, 7);
  assert.equal(wb, wa);
  assert.equal(client.state, 'open');
  assert.equal(client.userId, 7);
  await client.connect();
  assert.equal(sockets.length, 1);
  client.close();
});

test('reconnects with growing, jittered delays and resets after a welcome', async () => {
  const { client, clock, sockets, events } = makeClient();
  client.connect().catch(() => {});
  await flush();
  sockets[0].drop(1006);
  const delays = [];
  for (let i = 0; i < 6; i++) {
    const st = events.filter((x) => x.t === 'state' && x.e.state === 'reconnecting').pop();
    delays.push(st.e.delay);
    await clock.advance(st.e.delay);
    assert.equal(live(sockets).length, 1, 'exactly one live socket');
    sockets[sockets.length - 1].drop(1006);
  }
  // random 0.5 => 3/4 of min*2^n, capped at max
  assert.deepEqual(delays, [75, 150, 300, 600, 750, 750]);
  const st = events.filter((x) => x.t === 'state' && x.e.state === 'reconnecting').pop();
  await clock.advance(st.e.delay);
  sockets[sockets.length - 1].welcome();
  assert.equal(client.attempt, 0);
  sockets[sockets.length - 1].drop(1006);
  const again = events.filter((x) => x.t === 'state' && x.e.state === 'reconnecting').pop();
  assert.equal(again.e.delay, 75, 'back to the first delay after a successful connection');
  client.close();
});

test('close code 1012 reconnects within backoff.restart; 1013 waits at least backoff.slow', async () => {
  const { client, clock, sockets } = makeClient();
  client.connect().catch(() => {});
  await flush();
  sockets[0].welcome();
  sockets[0].drop(1012, 'relay restarting');
  assert.equal(client.state, 'reconnecting');
  // random 0.5 of backoff.restart (1000 ms by default)
  assert.deepEqual(clock.delays(), [500]);
  await clock.advance(499);
  assert.equal(sockets.length, 1, 'not before its jitter');
  await clock.advance(1);
  assert.equal(sockets.length, 2, 'reconnected after its jitter');
  // the relay is still down: normal backoff from there
  sockets[1].drop(1006);
  assert.deepEqual(clock.delays(), [75]);
  await clock.advance(75);
  sockets[2].welcome();
  sockets[2].drop(1013, 'too slow');
  assert.deepEqual(clock.delays(), [5000]);
  await clock.advance(4999);
  assert.equal(sockets.length, 3);
  await clock.advance(1);
  assert.equal(sockets.length, 4);
  client.close();
});

test('a socket that never says welcome is dropped after connectTimeout', async () => {
  const { client, clock, sockets } = makeClient({ connectTimeout: 2000 });
  client.connect().catch(() => {});
  await flush();
  await clock.advance(1999);
  assert.equal(sockets[0].closedWith, null);
  await clock.advance(1);
  assert.equal(sockets[0].closedWith, 4000);
  assert.equal(sockets[0].handlersAttached, false, 'the abandoned socket is detached');
  assert.equal(client.state, 'reconnecting');
  // a late close event of the abandoned socket changes nothing
  await clock.advance(75);
  assert.equal(sockets.length, 2);
  assert.equal(live(sockets).length, 1);
  client.close();
});

test('a token function is asked before every connection', async () => {
  let n = 0;
  const { client, clock, sockets } = makeClient({ token: () => `t${++n}` });
  client.connect().catch(() => {});
  await flush();
  sockets[0].welcome();
  sockets[0].drop(1008, 'token expired');
  await clock.advance(75);
  assert.match(sockets[1].url, /access_token=t2$/);
  client.close();
});

test('a failing token function is retried with backoff', async () => {
  let fail = true;
  const { client, clock, sockets, events } = makeClient({ token: async () => { if (fail) throw new Error('auth server down'); return 'ok'; } });
  client.connect().catch(() => {});
  await flush();
  assert.equal(sockets.length, 0);
  assert.equal(client.state, 'reconnecting');
  assert.ok(events.some((x) => x.t === 'error' && x.e.code === 'unauthorized'));
  fail = false;
  await clock.advance(75);
  assert.equal(sockets.length, 1);
  client.close();
});

test('the browser going online ends the wait', async () => {
  const { client, clock, sockets, win } = makeClient();
  client.connect().catch(() => {});
  await flush();
  sockets[0].drop(1006);
  sockets.length; // reconnecting in 75 ms
  win.dispatch('online');
  await flush();
  assert.equal(sockets.length, 2);
  assert.equal(clock.pending, 1, 'only the connect timeout is left');
  client.close();
});

test('a ping without answer drops the connection', async () => {
  const { client, clock, sockets } = makeClient({ pingInterval: 1000, requestTimeout: 500 });
  client.connect().catch(() => {});
  await flush();
  sockets[0].welcome();
  await clock.advance(1000);
  const ping = sockets[0].last('ping');
  assert.ok(ping, 'pinged after a silent interval');
  sockets[0].ok(ping, 'pong');
  await clock.advance(1000);
  assert.equal(sockets[0].requests('ping').length, 2);
  await clock.advance(500);
  assert.equal(sockets[0].closedWith, 4000, 'no pong: dropped');
  assert.equal(client.state, 'reconnecting');
  client.close();
});

test('the token is renewed with auth before it expires', async () => {
  let n = 0;
  const { client, clock, sockets } = makeClient({ token: () => `t${++n}`, tokenRefreshMargin: 60 });
  client.connect().catch(() => {});
  await flush();
  const expires = Math.floor(clock.now / 1000) + 600;
  sockets[0].welcome(7, { expires_at: expires });
  await clock.advance(539_000);
  assert.equal(sockets[0].requests('auth').length, 0);
  await clock.advance(1000);
  const auth = sockets[0].last('auth');
  assert.equal(auth.token, 't2');
  sockets[0].ok(auth, { expires_at: expires + 600 });
  await flush();
  assert.equal(client.expiresAt, expires + 600);
  client.close();
});
