// Catch-up, deduplication by (chat_id, seq) and cursor, edits and deletions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, flush, msg, change } from './fakes.mjs';

const announced = (events, types = ['message', 'edit', 'delete']) =>
  events.filter((x) => types.includes(x.t)).map((x) => `${x.t}:${x.e.chat_id}/${x.e.seq}@${x.e.cursor}`);

async function connected(opts) {
  const h = makeClient(opts);
  h.client.connect().catch(() => {});
  await flush();
  h.sockets[0].welcome();
  return h;
}

test('events are announced once: a repeated event is dropped', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  ws.push(change('message', msg(1, 1, 1)));
  ws.push(change('message', msg(1, 2, 2)));
  ws.push(change('message', msg(2, 1, 1)));
  assert.deepEqual(announced(events), ['message:1/1@1', 'message:1/2@2', 'message:2/1@1']);
  assert.equal(client.cursor(1), 2);
  assert.equal(client.cursor(2), 1);
  client.close();
});

test('edits and deletions are applied, stale ones ignored', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  ws.push(change('message', msg(1, 2, 2)));
  ws.push(change('edit', msg(1, 1, 3, 'fixed', { edited_at: 'x' })));
  ws.push(change('delete', msg(1, 2, 4, '', { deleted: true })));
  ws.push(change('edit', msg(1, 1, 3, 'fixed'))); // the same edit again
  assert.deepEqual(announced(events), ['message:1/1@1', 'message:1/2@2', 'edit:1/1@3', 'delete:1/2@4']);
  const edit = events.find((x) => x.t === 'edit').e;
  assert.equal(edit.message.body, 'fixed');
  client.close();
});

test('after a reconnect, catch_up from the cursor: missed messages once, in order, with edits', async () => {
  const { client, clock, sockets, events } = await connected();
  let ws = sockets[0];
  client.follow(1, { cursor: 0, lastSeq: 0 });
  const first = ws.last('catch_up');
  assert.deepEqual({ chat_id: first.chat_id, after: first.after }, { chat_id: 1, after: 0 });
  ws.ok(first, [msg(1, 1, 1), msg(1, 2, 2)]);
  await flush();
  ws.push(change('message', msg(1, 3, 3)));
  assert.equal(client.cursor(1), 3);

  ws.drop(1006);
  await clock.advance(75);
  ws = sockets[1];
  ws.welcome();
  const cu = ws.last('catch_up');
  assert.equal(cu.after, 3, 'catches up from the last cursor seen');
  // while the catch_up runs, live events arrive: they wait
  ws.push(change('message', msg(1, 7, 8)));
  ws.push(change('message', msg(1, 8, 9)));
  ws.ok(cu, [
    msg(1, 1, 4, 'edited while away', { edited_at: 'x' }),
    msg(1, 4, 5), msg(1, 5, 6), msg(1, 6, 7), msg(1, 7, 8),
  ]);
  await flush();
  assert.deepEqual(announced(events), [
    'message:1/1@1', 'message:1/2@2', 'message:1/3@3',
    'edit:1/1@4', 'message:1/4@5', 'message:1/5@6', 'message:1/6@7', 'message:1/7@8', 'message:1/8@9',
  ]);
  assert.equal(client.cursor(1), 9);
  const caught = events.filter((x) => x.t === 'caughtup').pop().e;
  assert.equal(caught.chat_id, 1);
  client.close();
});

test('catch_up pages until a short page', async () => {
  const { client, sockets } = await connected();
  const ws = sockets[0];
  client.follow(5, { cursor: 10, lastSeq: 10 });
  const page = Array.from({ length: 500 }, (_, i) => msg(5, 11 + i, 11 + i));
  ws.ok(ws.last('catch_up'), page);
  await flush();
  const second = ws.last('catch_up');
  assert.equal(second.after, 510);
  ws.ok(second, [msg(5, 511, 511)]);
  await flush();
  assert.equal(client.cursor(5), 511);
  assert.equal(ws.requests('catch_up').length, 2);
  client.close();
});

test('a resync event makes every followed chat catch up', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  ws.push(change('message', msg(2, 4, 9)));
  ws.push({ v: 1, type: 'resync', reason: 'overflow' });
  const cus = ws.requests('catch_up').map((r) => [r.chat_id, r.after]);
  assert.deepEqual(cus, [[1, 1], [2, 9]]);
  assert.ok(events.some((x) => x.t === 'resync' && x.e.reason === 'overflow'));
  assert.equal(ws.requests('presence').length, 0, 'no presence asked while none is watched');
  client.close();
});

test('a resync asks again for the presence of watched users (changes may have been missed)', async () => {
  const { client, sockets } = await connected();
  const ws = sockets[0];
  client.watchPresence([2, 3]).catch(() => {});
  assert.equal(ws.requests('presence').length, 1);
  ws.push({ v: 1, type: 'resync', reason: 'overflow' });
  assert.equal(ws.requests('presence').length, 2);
  assert.deepEqual(ws.last('presence').user_ids, [2, 3]);
  client.close();
});

test('a resync during a catch_up makes one more catch_up after it', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  client.follow(1, { cursor: 2, lastSeq: 2 });
  const first = ws.last('catch_up');
  ws.push({ v: 1, type: 'resync', reason: 'relay_reconnected' });
  assert.equal(ws.requests('catch_up').length, 1, 'not two at once');
  ws.ok(first, [msg(1, 3, 3)]);
  await flush();
  const second = ws.last('catch_up');
  assert.notEqual(second, first, 'the resync is not forgotten');
  assert.equal(second.after, 3);
  ws.ok(second, [msg(1, 4, 4)]);
  await flush();
  assert.deepEqual(announced(events), ['message:1/3@3', 'message:1/4@4']);
  assert.equal(ws.requests('catch_up').length, 2, 'and no more');
  client.close();
});

test('a failed catch_up is retried and the waiting events are fetched again', async () => {
  const { client, clock, sockets, events } = await connected();
  const ws = sockets[0];
  client.follow(1, { cursor: 2, lastSeq: 2 });
  ws.push(change('message', msg(1, 4, 4)));
  ws.error(ws.last('catch_up'), 'unavailable', 'database down');
  await flush();
  assert.ok(events.some((x) => x.t === 'error' && x.e.code === 'unavailable'));
  assert.deepEqual(announced(events), [], 'nothing announced out of order');
  await clock.advance(150);
  const again = ws.last('catch_up');
  assert.equal(again.after, 2);
  ws.ok(again, [msg(1, 3, 3), msg(1, 4, 4)]);
  await flush();
  assert.deepEqual(announced(events), ['message:1/3@3', 'message:1/4@4']);
  client.close();
});

test('history marks messages as seen and gives a chat its cursor', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  const h = client.history(3);
  const req = ws.last('history');
  assert.equal(req.before_seq, undefined);
  ws.ok(req, [msg(3, 10, 12), msg(3, 9, 9)]);
  const rows = await h;
  assert.equal(rows.length, 2);
  assert.equal(client.cursor(3), 12);
  // an event for a message history already gave is not announced again
  ws.push(change('message', msg(3, 10, 12)));
  ws.push(change('message', msg(3, 11, 13)));
  // an edit of an older message not loaded is still an edit, not a new message
  ws.push(change('edit', msg(3, 2, 14, 'old one edited')));
  assert.deepEqual(announced(events), ['message:3/11@13', 'edit:3/2@14']);
  client.close();
});

test('own sends are announced by their event, once, in chat order', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  const p = client.send(1, 'mine');
  const req = ws.last('send');
  // the answer overtakes the event of an earlier message by someone else
  ws.ok(req, msg(1, 3, 3, 'mine', { client_id: req.client_id, sender_id: 7 }));
  const sent = await p;
  assert.equal(sent.seq, 3);
  ws.push(change('message', msg(1, 2, 2, 'theirs')));
  ws.push(change('message', msg(1, 3, 3, 'mine', { client_id: req.client_id, sender_id: 7 })));
  assert.deepEqual(announced(events), ['message:1/1@1', 'message:1/2@2', 'message:1/3@3']);
  client.close();
});

test('the seen set is bounded; older seqs then count as history', async () => {
  const { client, sockets, events } = await connected({ seenLimit: 10 });
  const ws = sockets[0];
  for (let i = 1; i <= 30; i++) ws.push(change('message', msg(1, i, i)));
  assert.equal(announced(events).length, 30);
  ws.push(change('edit', msg(1, 1, 31, 'edit of an old one')));
  assert.equal(events.filter((x) => x.t === 'edit').length, 1);
  client.close();
});

test('with autoFollow off, events of chats not followed are ignored', async () => {
  const { client, sockets, events } = await connected({ autoFollow: false });
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  client.follow(2, { lastSeq: 0 });
  ws.push(change('message', msg(2, 1, 1)));
  assert.deepEqual(announced(events), ['message:2/1@1']);
  client.close();
});

test('read, typing and presence events are passed on; presence is asked again after a reconnect', async () => {
  const { client, clock, sockets, events } = await connected();
  let ws = sockets[0];
  ws.push({ v: 1, type: 'read', chat_id: 1, user_id: 2, seq: 5 });
  ws.push({ v: 1, type: 'typing', chat_id: 1, user_id: 2 });
  ws.push({ v: 1, type: 'presence', user_id: 2, online: false, last_seen: '2026-11-25T18:00:00+00:00', version: 1 });
  assert.deepEqual(events.find((x) => x.t === 'read').e, { chat_id: 1, user_id: 2, seq: 5 });
  assert.deepEqual(events.find((x) => x.t === 'typing').e, { chat_id: 1, user_id: 2 });
  assert.equal(client.presenceOf(2).online, false);
  const w = client.watchPresence([2, 3]);
  ws.ok(ws.last('presence'), [{ user_id: 2, online: true, last_seen: '2026-11-25T18:00:00+00:00', version: 2 }]);
  await w;
  assert.equal(client.presenceOf(2).online, true);
  ws.drop(1006);
  await clock.advance(75);
  ws = sockets[1];
  ws.welcome();
  assert.deepEqual(ws.last('presence').user_ids, [2, 3]);
  client.close();
});

test('a presence reply older than an event already received does not undo it, whatever last_seen says', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  const asked = client.presence([2, 3]);
  assert.deepEqual(ws.last('presence').user_ids, [2, 3]);
  assert.equal(ws.last('presence').subscribe, undefined, 'subscribes by default');
  // Boris comes online after the database answered but before the answer
  // arrives; both carry the same rounded last_seen, only version orders them
  ws.push({ v: 1, type: 'presence', user_id: 2, online: true, last_seen: '2026-11-25T18:00:00+00:00', version: 8 });
  ws.ok(ws.last('presence'), [
    { user_id: 2, online: false, last_seen: '2026-11-25T18:00:00+00:00', version: 7 },
    { user_id: 3, online: false, last_seen: null, version: 0 },
  ]);
  await asked;
  assert.equal(client.presenceOf(2).online, true);
  assert.equal(client.presenceOf(3).online, false);
  assert.deepEqual(events.filter((x) => x.t === 'presence').map((x) => `${x.e.user_id}:${x.e.online}`), ['2:true', '3:false']);
  // a later change still gets through, in another time zone too
  ws.push({ v: 1, type: 'presence', user_id: 2, online: false, last_seen: '2026-11-25T18:00:00+00:00', version: 9 });
  assert.equal(client.presenceOf(2).online, false);
  client.presence([2], { subscribe: false }).catch(() => {});
  assert.equal(ws.last('presence').subscribe, false);
  client.close();
});

test('a cursor that jumps ahead is a gap: the client catches up instead of trusting it', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  // a forged (or misrouted) event far ahead: it must not move the cursor
  ws.push(change('message', msg(1, 2, 1e15, 'FORGED')));
  const cu = ws.last('catch_up');
  assert.equal(cu.after, 1, 'catches up from the last cursor it had');
  ws.ok(cu, [msg(1, 2, 2, 'real')]);
  await flush();
  assert.equal(client.cursor(1), 2, 'the database decides the cursor');
  ws.push(change('message', msg(1, 3, 3, 'later')));
  assert.deepEqual(announced(events), ['message:1/1@1', 'message:1/2@2', 'message:1/3@3']);
  assert.ok(!events.some((x) => x.e?.message?.body === 'FORGED'), 'the forged message was not shown');
  client.close();
});

test('a gap of missed changes is filled from the database, in order', async () => {
  const { client, sockets, events } = await connected();
  const ws = sockets[0];
  ws.push(change('message', msg(1, 1, 1)));
  ws.push(change('message', msg(1, 4, 4)));
  const cu = ws.last('catch_up');
  assert.equal(cu.after, 1);
  ws.ok(cu, [msg(1, 2, 2), msg(1, 3, 3), msg(1, 4, 4)]);
  await flush();
  assert.deepEqual(announced(events), ['message:1/1@1', 'message:1/2@2', 'message:1/3@3', 'message:1/4@4']);
  assert.equal(client.cursor(1), 4);
  client.close();
});
