// Push devices: the welcome's vapid_public_key, registerDevice /
// unregisterDevice as requests, and base64UrlToBytes for applicationServerKey.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatError, base64UrlToBytes } from '../../relay/www/chat-client.js';
import { makeClient, flush } from './fakes.mjs';

const KEY = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url');

async function connected(welcomeExtra = {}) {
  const h = makeClient();
  const w = h.client.connect();
  await flush();
  h.sockets[0].welcome(7, welcomeExtra);
  await w;
  return h;
}

test('the welcome\'s vapid_public_key is kept, and dropped by a welcome without it', async () => {
  const { client, clock, sockets } = await connected({ vapid_public_key: KEY });
  assert.equal(client.vapidPublicKey, KEY);
  sockets[0].drop(1012); // a relay restarting: another one, without push, takes over
  await clock.advance(1000);
  assert.equal(sockets.length, 2);
  sockets[1].welcome(7);
  await flush();
  assert.equal(client.vapidPublicKey, null);
  client.close();
});

test('a client before any welcome, or a welcome with an empty key: no key', async () => {
  const h = makeClient();
  assert.equal(h.client.vapidPublicKey, null);
  h.client.close();
  const { client } = await connected({ vapid_public_key: '' });
  assert.equal(client.vapidPublicKey, null);
  client.close();
});

test('registerDevice sends the subscription\'s JSON and resolves with the device id', async () => {
  const { client, sockets } = await connected({ vapid_public_key: KEY });
  const ws = sockets[0];
  const json = { endpoint: 'https://push.example/abc', expirationTime: null, keys: { p256dh: 'BA', auth: 'AA' } };
  // a PushSubscription: its toJSON() is what goes
  const p = client.registerDevice('webpush', { endpoint: json.endpoint, toJSON: () => json });
  const req = ws.last('register_device');
  assert.deepEqual({ ...req, id: 0 }, { type: 'register_device', id: 0, kind: 'webpush', token: json });
  ws.ok(req, 17);
  assert.equal(await p, 17);
  // a plain object goes as it is
  const q = client.registerDevice('webpush', json);
  assert.deepEqual(ws.last('register_device').token, json);
  ws.error(ws.last('register_device'), 'invalid', 'webpush token keys.auth must be base64url of 16 bytes', 'bad_argument');
  await assert.rejects(q, (e) => e instanceof ChatError && e.code === 'invalid' && e.reason === 'bad_argument' &&
    e.type === 'register_device' && !e.retryable);
  client.close();
});

test('registerDevice refuses a token that is not an object without a request', async () => {
  const { client, sockets } = await connected();
  for (const bad of [null, 'https://push.example/abc', ['x'], 5]) {
    await assert.rejects(client.registerDevice('webpush', bad), (e) => e instanceof ChatError && e.code === 'invalid');
  }
  assert.equal(sockets[0].requests('register_device').length, 0);
  client.close();
});

test('unregisterDevice sends the device id; another\'s device is forbidden', async () => {
  const { client, sockets } = await connected();
  const ws = sockets[0];
  const p = client.unregisterDevice(17);
  const req = ws.last('unregister_device');
  assert.deepEqual({ ...req, id: 0 }, { type: 'unregister_device', id: 0, device_id: 17 });
  ws.ok(req, null);
  assert.equal(await p, null);
  const q = client.unregisterDevice(18);
  ws.error(ws.last('unregister_device'), 'forbidden', 'access denied');
  await assert.rejects(q, (e) => e.code === 'forbidden');
  client.close();
});

test('base64UrlToBytes decodes the key, with or without padding; refuses other text', () => {
  const bytes = base64UrlToBytes(KEY);
  assert.ok(bytes instanceof Uint8Array);
  assert.equal(bytes.length, 65);
  assert.equal(bytes[0], 4);
  assert.deepEqual([...bytes.slice(1)], new Array(64).fill(7));
  assert.deepEqual([...base64UrlToBytes('-_8')], [0xfb, 0xff]);
  assert.deepEqual([...base64UrlToBytes('-_8=')], [0xfb, 0xff]);
  assert.deepEqual([...base64UrlToBytes('')], []);
  for (const bad of ['+/8', 'a b', 'A', 'ab$c']) assert.throws(() => base64UrlToBytes(bad), TypeError);
});
