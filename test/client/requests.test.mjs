// Requests, typed errors and timeouts, pending sends, typing throttle,
// attachments, error containment and close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatError, ERROR_CODES } from '../../relay/www/chat-client.js';
import { makeClient, flush, msg, change } from './fakes.mjs';

async function connected(opts) {
  const h = makeClient(opts);
  h.client.connect().catch(() => {});
  await flush();
  h.sockets[0].welcome();
  return h;
}

test('a request resolves with its result; an error answer is a typed ChatError', async () => {
  const { client, sockets } = await connected();
  const ws = sockets[0];
  const p = client.chats();
  const req = ws.last('chats');
  assert.deepEqual({ ...req, id: 0 }, { type: 'chats', id: 0, page_size: 50, archived: false });
  ws.ok(req, [{ chat_id: 1 }]);
  assert.deepEqual(await p, [{ chat_id: 1 }]);

  const q = client.markRead(1, 5);
  ws.error(ws.last('read'), 'forbidden', 'chat not found or access denied', 'access_denied');
  await assert.rejects(q, (e) => e instanceof ChatError && e.code === 'forbidden' && e.reason === 'access_denied' &&
    e.type === 'read' && !e.retryable);

  const u = client.request('upload', { chat_id: 1 });
  ws.error(ws.last('upload'), 'invalid', 'unknown request type', 'unknown_type');
  await assert.rejects(u, (e) => e.code === 'unsupported' && e.reason === 'unknown_type');
  const noStore = client.request('upload', { chat_id: 1 });
  ws.error(ws.last('upload'), 'unavailable', 'object storage is not configured', 'not_configured');
  await assert.rejects(noStore, (e) => e.code === 'unsupported' && e.reason === 'not_configured' && !e.retryable);
  for (const code of ['unavailable', 'rate_limited', 'timeout', 'disconnected']) assert.ok(new ChatError(code).retryable);
  assert.ok(ERROR_CODES.includes('timeout'));
  client.close();
});

test('errors are read from code and reason, never from the message text', async () => {
  const { client, sockets } = await connected();
  const ws = sockets[0];
  // the old texts, with other reasons: no longer unsupported
  const a = client.request('upload', { chat_id: 1 });
  ws.error(ws.last('upload'), 'invalid', 'unknown request type', 'bad_param');
  await assert.rejects(a, (e) => e.code === 'invalid' && e.reason === 'bad_param');
  const b = client.request('upload', { chat_id: 1 });
  ws.error(ws.last('upload'), 'unavailable', 'object storage is not configured', 'busy');
  await assert.rejects(b, (e) => e.code === 'unavailable' && e.reason === 'busy' && e.retryable);
  // any text, or none, with the reasons: unsupported
  const c = client.request('frobnicate', {});
  ws.error(ws.last('frobnicate'), 'invalid', 'Unbekannter Anfragetyp', 'unknown_type');
  await assert.rejects(c, (e) => e.code === 'unsupported' && e.reason === 'unknown_type' && !e.retryable);
  const d = client.request('attachment_url', { attachment_id: 1 });
  ws.push({ type: 'error', id: ws.last('attachment_url').id, code: 'unavailable', reason: 'not_configured' });
  await assert.rejects(d, (e) => e.code === 'unsupported' && e.reason === 'not_configured');
  // an answer without a reason (an older relay): the code alone, reason null
  const f = client.markRead(1, 2);
  ws.push({ type: 'error', id: ws.last('read').id, code: 'rate_limited', message: 'slow down' });
  await assert.rejects(f, (e) => e.code === 'rate_limited' && e.reason === null && e.message === 'slow down');
  // an unknown code is internal; its reason is kept
  const g = client.unread();
  ws.error(ws.last('unread'), 'teapot', 'short and stout', 'brewing');
  await assert.rejects(g, (e) => e.code === 'internal' && e.reason === 'brewing');
  assert.equal(new ChatError('timeout').reason, null, "the client's own errors have no reason");
  client.close();
});

test('a request without answer fails with timeout; a late answer is ignored', async () => {
  const { client, clock, sockets } = await connected({ requestTimeout: 1000 });
  const ws = sockets[0];
  const p = client.history(1);
  const req = ws.last('history');
  const check = assert.rejects(p, (e) => e instanceof ChatError && e.code === 'timeout' && e.type === 'history');
  await clock.advance(1000);
  await check;
  ws.ok(req, []); // too late: nothing happens
  assert.equal(client.timerCount, 0);
  client.close();
});

test('requests made while disconnected wait for the connection, within their timeout', async () => {
  const { client, clock, sockets } = makeClient({ requestTimeout: 5000 });
  client.connect().catch(() => {});
  await flush();
  const p = client.unread();
  const late = client.request('chats', {}, { timeout: 100 });
  const lateCheck = assert.rejects(late, (e) => e.code === 'timeout');
  await clock.advance(100);
  await lateCheck;
  sockets[0].welcome();
  const req = sockets[0].last('unread');
  assert.ok(req);
  assert.equal(sockets[0].requests('chats').length, 0, 'the timed-out request is not sent');
  sockets[0].ok(req, 3);
  assert.equal(await p, 3);
  client.close();
});

test('requests in flight when the socket drops fail with disconnected', async () => {
  const { client, sockets } = await connected();
  const p = client.history(1);
  sockets[0].drop(1006);
  await assert.rejects(p, (e) => e.code === 'disconnected' && e.retryable);
  client.close();
});

test('a pending send is retried with the same client_id after a reconnect, never duplicated', async () => {
  const { client, clock, sockets, events } = await connected();
  let ws = sockets[0];
  const p = client.send(1, 'hello');
  const first = ws.last('send');
  assert.match(first.client_id, /^[0-9a-f-]{36}$/);
  ws.drop(1006); // lost before the answer: stored or not, we cannot know
  await clock.advance(75);
  ws = sockets[1];
  ws.welcome();
  const retry = ws.last('send');
  assert.equal(retry.client_id, first.client_id, 'same client_id');
  assert.equal(retry.body, 'hello');
  ws.ok(retry, msg(1, 1, 1, 'hello', { client_id: first.client_id }));
  assert.equal((await p).seq, 1);
  ws.drop(1006);
  await clock.advance(75);
  sockets[2].welcome();
  assert.equal(sockets[2].requests('send').length, 0, 'acknowledged: not sent again');
  assert.equal(client.pending().length, 0);
  assert.equal(events.filter((x) => x.t === 'sendfailed').length, 0);
  client.close();
});

test('unavailable and rate_limited answers retry the same send; forbidden fails it', async () => {
  const { client, clock, sockets, events } = await connected();
  const ws = sockets[0];
  const p = client.send(1, 'a', { clientId: '11111111-1111-4111-8111-111111111111' });
  ws.error(ws.last('send'), 'unavailable');
  await clock.advance(75);
  ws.error(ws.last('send'), 'rate_limited');
  await clock.advance(1000);
  const third = ws.last('send');
  assert.equal(ws.requests('send').length, 3);
  assert.ok(ws.requests('send').every((r) => r.client_id === '11111111-1111-4111-8111-111111111111'));
  ws.ok(third, msg(1, 1, 1, 'a'));
  await p;

  const f = client.send(1, 'b');
  ws.error(ws.last('send'), 'forbidden', 'blocked');
  await assert.rejects(f, (e) => e.code === 'forbidden');
  assert.equal(ws.requests('send').length, 4);
  assert.equal(events.filter((x) => x.t === 'sendfailed').length, 1);
  client.close();
});

test('sends of one chat go one at a time, in order; other chats are not held up', async () => {
  const { client, sockets } = await connected();
  const ws = sockets[0];
  const ps = [client.send(1, 'one'), client.send(1, 'two'), client.send(2, 'other'), client.send(1, 'three')];
  assert.deepEqual(ws.requests('send').map((r) => r.body), ['one', 'other']);
  ws.ok(ws.requests('send')[0], msg(1, 1, 1, 'one'));
  await flush();
  assert.deepEqual(ws.requests('send').map((r) => r.body), ['one', 'other', 'two']);
  ws.ok(ws.requests('send')[2], msg(1, 2, 2, 'two'));
  await flush();
  ws.ok(ws.requests('send')[1], msg(2, 1, 1, 'other'));
  ws.ok(ws.requests('send')[3], msg(1, 3, 3, 'three'));
  const res = await Promise.all(ps);
  assert.deepEqual(res.map((m) => m.body), ['one', 'two', 'other', 'three']);
  client.close();
});

test('sending the same client_id twice is one send', async () => {
  const { client, sockets } = await connected();
  const id = '22222222-2222-4222-8222-222222222222';
  const a = client.send(1, 'x', { clientId: id });
  const b = client.send(1, 'x', { clientId: id });
  assert.equal(a, b);
  assert.equal(sockets[0].requests('send').length, 1);
  client.close();
  await assert.rejects(a, (e) => e.code === 'closed');
});

test('a send that cannot get through fails with timeout after sendTimeout', async () => {
  const { client, clock } = makeClient({ sendTimeout: 3000 });
  client.connect().catch(() => {});
  const p = client.send(1, 'into the void');
  const check = assert.rejects(p, (e) => e.code === 'timeout' && e.type === 'send');
  await clock.advance(3000);
  await check;
  assert.equal(client.pending().length, 0);
  client.close();
});

test('typing is throttled per chat and only sent while connected', async () => {
  const { client, clock, sockets } = makeClient({ typingInterval: 3000 });
  client.connect().catch(() => {});
  await flush();
  assert.equal(client.typing(1), false, 'not connected');
  sockets[0].welcome();
  assert.equal(client.typing(1), true);
  assert.equal(client.typing(1), false);
  assert.equal(client.typing(2), true);
  await clock.advance(2999);
  assert.equal(client.typing(1), false);
  await clock.advance(1);
  assert.equal(client.typing(1), true);
  assert.deepEqual(sockets[0].requests('typing').map((r) => r.chat_id), [1, 2, 1]);
  // sending a message ends the throttle: typing again right away is told
  client.send(1, 'done').catch(() => {});
  assert.equal(client.typing(1), true);
  assert.deepEqual(sockets[0].requests('typing').map((r) => r.chat_id), [1, 2, 1, 1]);
  // a refused typing notice never surfaces as an unhandled rejection
  sockets[0].error(sockets[0].last('typing'), 'rate_limited');
  await flush();
  client.close();
});

test('a throwing listener is contained: others still run, an error event tells', async () => {
  const { client, sockets, events } = await connected();
  const seen = [];
  client.on('message', () => { throw new Error('render failed'); });
  client.on('message', (e) => seen.push(e.seq));
  sockets[0].push(change('message', msg(1, 1, 1)));
  sockets[0].push('not json'); // a broken frame, too
  sockets[0].onmessage({ data: '{broken' });
  sockets[0].push(change('message', msg(1, 2, 2)));
  assert.deepEqual(seen, [1, 2]);
  const errs = events.filter((x) => x.t === 'error').map((x) => x.e.code);
  assert.ok(errs.includes('listener'));
  assert.ok(errs.includes('protocol'));
  client.close();
});

test('upload: presigned PUT straight to the store, forbidden headers left to the browser', async () => {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    return { ok: url.includes('good'), status: url.includes('good') ? 200 : 403 };
  };
  const { client, sockets } = await connected({ fetch });
  const ws = sockets[0];
  const file = { name: 'kettle.png', type: 'image/png', size: 3 };
  const p = client.upload(4, file);
  const req = ws.last('upload');
  assert.deepEqual({ ...req, id: 0 }, { type: 'upload', id: 0, chat_id: 4, file_name: 'kettle.png', content_type: 'image/png', size: 3 });
  ws.ok(req, { attachment_id: 9, method: 'PUT', url: 'https://s3.test/good?X-Amz-Signature=1', headers: { 'Content-Type': 'image/png', 'Content-Length': '3' } });
  assert.deepEqual(await p, { id: 9, name: 'kettle.png', content_type: 'image/png', size: 3 });
  assert.equal(calls[0].init.method, 'PUT');
  assert.deepEqual(calls[0].init.headers, { 'Content-Type': 'image/png' });
  assert.equal(calls[0].init.body, file);

  const bad = client.upload(4, file);
  ws.ok(ws.last('upload'), { attachment_id: 10, method: 'PUT', url: 'https://s3.test/bad', headers: {} });
  await assert.rejects(bad, (e) => e.code === 'upload_failed');

  const u = client.attachmentUrl(9);
  ws.ok(ws.last('attachment_url'), 'https://s3.test/get/9?sig');
  assert.equal(await u, 'https://s3.test/get/9?sig');
  assert.equal(await client.attachmentUrl(9), 'https://s3.test/get/9?sig');
  assert.equal(ws.requests('attachment_url').length, 1, 'cached');
  client.close();
});

test('close() leaves nothing behind', async () => {
  const { client, clock, sockets, win, urls } = await connected({ pingInterval: 1000, typingInterval: 3000 });
  const ws = sockets[0];
  client.follow(1, { cursor: 3, lastSeq: 3 });
  const reqP = client.history(1);
  const sendP = client.send(1, 'pending');
  client.typing(1);
  const u1 = client.previewUrl({});
  client.previewUrl({});
  client.revokePreview(u1);
  assert.equal(urls.live.size, 1);
  assert.ok(client.timerCount > 0);
  assert.ok(client.listenerCount() > 0);
  assert.equal(win.count(), 1);

  const seen = [];
  client.on('state', (e) => seen.push({ ...e, timers: client.timerCount, urls: client.objectUrlCount, now: client.state }));
  client.close();
  assert.equal(client.state, 'closed');
  assert.deepEqual(seen, [{ state: 'closed', attempt: 0, timers: 0, urls: 0, now: 'closed' }],
    'one state event, when everything is released');
  assert.equal(client.timerCount, 0, 'no timer of the client is left');
  assert.equal(clock.pending, 0, 'no timer at all is left');
  assert.equal(client.listenerCount(), 0, 'listeners dropped');
  assert.equal(win.count(), 0, 'window listener removed');
  assert.equal(urls.live.size, 0, 'object URLs revoked');
  assert.equal(client.objectUrlCount, 0);
  assert.equal(ws.handlersAttached, false, 'socket handlers detached');
  assert.equal(ws.closedWith, 1000);
  await assert.rejects(reqP, (e) => e.code === 'closed');
  await assert.rejects(sendP, (e) => e.code === 'closed');
  await assert.rejects(client.request('ping'), (e) => e.code === 'closed');
  await assert.rejects(client.connect(), (e) => e.code === 'closed');
  // nothing comes back to life: a late frame or time passing does nothing
  ws.push(change('message', msg(1, 4, 4)));
  await clock.advance(60000);
  assert.equal(sockets.length, 1);
  assert.equal(client.on('message', () => {})(), undefined);
  assert.equal(client.listenerCount(), 0);
  client.close(); // twice is harmless
});

test('close() while reconnecting cancels the reconnect', async () => {
  const { client, clock, sockets } = await connected();
  sockets[0].drop(1006);
  assert.equal(client.state, 'reconnecting');
  client.close();
  assert.equal(clock.pending, 0);
  await clock.advance(60000);
  assert.equal(sockets.length, 1);
});

test('close() while the token is being fetched opens no socket', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const { client, sockets } = makeClient({ token: async () => { await gate; return 't'; } });
  const c = client.connect();
  client.close();
  await assert.rejects(c, (e) => e.code === 'closed');
  release();
  await flush();
  assert.equal(sockets.length, 0);
});
