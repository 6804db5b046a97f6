-- Who may see whom: presence is shared only between contacts (both have
-- written in a chat they share), a block either way round hides presence
-- and typing, last_seen is rounded down to chat.presence_granularity, and
-- a block tells the relays to drop subscriptions (a "block" event).
--
-- Events need committed transactions, so the calls run over dblink
-- ('sender'); 'listener' runs LISTEN chat_events. Users 9600..9699; the
-- committed rows are deleted at the end.
BEGIN;
\ir _helpers.psql
SELECT plan(36);

CREATE FUNCTION pg_temp.remote(sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink('sender', sql) AS t(r text) $$;

-- The users of ids whose presence viewer gets from presence().
CREATE FUNCTION pg_temp.seen_by(viewer bigint, ids bigint[]) RETURNS bigint[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg((p ->> 'user_id')::bigint ORDER BY 1), '{}') FROM chat.presence(viewer, ids) p
$$;

CREATE FUNCTION pg_temp.cleanup() RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.remote($r$
	DELETE FROM chat.presence WHERE relay_id = 'tap-rule';
	DELETE FROM chat.relays WHERE relay_id = 'tap-rule';
	DELETE FROM chat.last_seen WHERE user_id BETWEEN 9600 AND 9699;
	DELETE FROM chat.blocks WHERE blocker_id BETWEEN 9600 AND 9699;
	DELETE FROM chat.contacts WHERE user_id BETWEEN 9600 AND 9699 OR peer_id BETWEEN 9600 AND 9699;
	DELETE FROM chat.chats WHERE user_a BETWEEN 9600 AND 9699 OR user_b BETWEEN 9600 AND 9699$r$)
$$;

SELECT is(dblink_connect('listener', pg_temp.connstr()), 'OK', 'listener connected');
SELECT is(dblink_exec('listener', 'LISTEN chat_events'), 'LISTEN', 'listener listens on chat_events');
SELECT is(dblink_connect('sender', pg_temp.connstr()), 'OK', 'sender connected');
SELECT lives_ok($$SELECT pg_temp.cleanup()$$, 'no leftovers of an earlier run');

-- Seller 9600. A stranger 9601 opens a chat with them: no contact.
SELECT pg_temp.remote($$SELECT chat.open_chat(9601, 'listing', 77, 9600)$$) AS stranger_chat \gset
SELECT is(pg_temp.seen_by(9601, '{9600}'), '{}'::bigint[], 'opening a chat with someone does not show their presence');
SELECT is(pg_temp.seen_by(9601, '{9601}'), '{9601}'::bigint[], 'one''s own presence is always answered');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9601, %s, ''are you there?'')')$$, :stranger_chat),
	'the stranger writes');
SELECT is(pg_temp.seen_by(9601, '{9600}'), '{}'::bigint[], 'writing unanswered does not either');
SELECT is(pg_temp.seen_by(9600, '{9601}'), '{}'::bigint[], 'nor the other way round');
SELECT is((SELECT count(*) FROM chat.contacts WHERE 9600 IN (user_id, peer_id)), 0::bigint, 'no contact yet');

-- The seller answers: now both have written, they are contacts.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9600, %s, ''yes'')')$$, :stranger_chat),
	'the seller answers');
SELECT is(pg_temp.seen_by(9601, '{9600}'), '{9600}'::bigint[], 'the buyer sees the seller''s presence');
SELECT is(pg_temp.seen_by(9600, '{9601}'), '{9601}'::bigint[], 'and the seller the buyer''s');
SELECT is(ARRAY(SELECT user_id || '>' || peer_id FROM chat.contacts WHERE 9600 IN (user_id, peer_id) ORDER BY 1),
	ARRAY['9600>9601', '9601>9600'], 'one contact, both ways round');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9601, %s, ''ok'') || chat.send_message(9600, %s, ''ok'')')$$,
	:stranger_chat, :stranger_chat), 'more messages');
SELECT is((SELECT count(*) FROM chat.contacts WHERE 9600 IN (user_id, peer_id)), 2::bigint, 'add nothing');
SELECT is(pg_temp.seen_by(9602, '{9600,9601}'), '{}'::bigint[], 'a third user sees neither');

-- last_seen is coarse: rounded down to the granularity, the exact time kept.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-rule', '{9600}', NULL)$r$)$$, 'the seller comes online');
SELECT is(pg_temp.collect_count('{"type": "presence", "user_id": 9600, "online": true}', 1), 1,
	'announced (to subscribers): they have a contact now');
SELECT is((SELECT extract(epoch FROM (p ->> 'last_seen')::timestamptz)::numeric % 300 FROM chat.presence(9601, '{9600}') p),
	0::numeric, 'others see last_seen on a multiple of 300 s (the default)');
SELECT cmp_ok((SELECT last_seen FROM chat.last_seen WHERE user_id = 9600) - (SELECT (p ->> 'last_seen')::timestamptz FROM chat.presence(9601, '{9600}') p),
	'<', interval '300 s', 'it is the stored time rounded down');
SET chat.presence_granularity = '1h';
SELECT is((SELECT extract(epoch FROM (p ->> 'last_seen')::timestamptz)::numeric % 3600 FROM chat.presence(9601, '{9600}') p),
	0::numeric, 'chat.presence_granularity sets the rounding');
RESET chat.presence_granularity;
SELECT is((pg_temp.try($$SET chat.presence_granularity = 0$$)).state, '22023', 'a granularity under one second is refused');

-- A block, either way round, hides presence and typing; relays are told.
SELECT coalesce(max(n), 0) AS mark FROM events \gset
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.block_user(9601, 9600)$r$)$$, 'the buyer blocks the seller');
SELECT is(pg_temp.seen_by(9600, '{9601}'), '{}'::bigint[], 'the blocked one no longer sees the blocker');
SELECT is(pg_temp.seen_by(9601, '{9600}'), '{}'::bigint[], 'nor the blocker the blocked one');
SELECT is(pg_temp.collect_count('{"type": "block", "user_id": 9601, "other_id": 9600}', 1), 1, 'one block event');
SELECT is((SELECT env FROM events WHERE n > :mark AND event ->> 'type' = 'block'),
	'{"to":[9600,9601],"ev":{"v":1,"type":"block","user_id":9601,"other_id":9600}}',
	'to both, for the relays (never forwarded to a client)');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.typing(9601, %s)')$$, :stranger_chat), 'the blocker types');
SELECT is((pg_temp.try(format('SELECT chat.typing(9600, %s)', :stranger_chat))).state, '42501', 'the blocked one may not type');
-- a marker: the stranger chat's next message; nothing published before it but itself
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9601, %s, ''marker'')')$$, :stranger_chat), 'a marker message');
SELECT is(pg_temp.collect_count('{"type": "message", "message": {"body": "marker"}}', 1), 1, 'the marker arrives');
SELECT is(ARRAY(SELECT event ->> 'type' FROM events WHERE n > :mark ORDER BY n), ARRAY['block', 'message'],
	'the blocker''s typing went to nobody');
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.unblock_user(9601, 9600)$r$)$$, 'unblocked');
SELECT is(pg_temp.seen_by(9600, '{9601}'), '{9601}'::bigint[], 'presence is shared again');

SELECT lives_ok($$SELECT pg_temp.cleanup()$$, 'clean up');
SELECT * FROM finish();
ROLLBACK;
