-- Push notifications, the database half (sql/notify_push.sql): the due
-- state kept by send_message and mark_read (chat.push_state: push_delay,
-- folding, push_interval, the sender's own clear); push_claim's rules at
-- send time (read, online, last seen, muted, blocked, push off, no device,
-- all deleted), one send per device with its data, clears, superseding,
-- leases, the kinds filter, concurrent claims (dblink); push_result
-- (sent, gone, retry with backoff and Retry-After, dropped, stale);
-- argument checks, privileges, push_backlog. Time is faked by moving
-- due_at, pushed_at, last_seen and next_at into the past as the owner.
-- Users 43000..43199; the rows committed for the dblink part are deleted
-- before the rest.
BEGIN;
\ir _helpers.psql
SELECT plan(156);

-- base64url without padding, and a valid webpush subscription.
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text
LANGUAGE sql AS $$ SELECT translate(replace(encode(b, 'base64'), E'\n', ''), '+/=', '-_') $$;
CREATE FUNCTION pg_temp.wp(endpoint text) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object('endpoint', endpoint, 'keys', jsonb_build_object(
		'p256dh', pg_temp.b64url(decode('04' || repeat('a1', 64), 'hex')),
		'auth', pg_temp.b64url(decode(repeat('5c', 16), 'hex'))))
$$;
-- A device of each kind for u.
CREATE FUNCTION pg_temp.devices3(u bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM chat.register_device(u, 'webpush', pg_temp.wp('https://push.example.com/u' || u));
	PERFORM chat.register_device(u, 'fcm', jsonb_build_object('token', 'fcm-' || u));
	PERFORM chat.register_device(u, 'apns', jsonb_build_object('token', lpad(to_hex(u), 64, '0')));
END
$$;
CREATE FUNCTION pg_temp.fcm(u bigint) RETURNS bigint
LANGUAGE sql AS $$ SELECT chat.register_device(u, 'fcm', jsonb_build_object('token', 'fcm-' || u)) $$;

-- Make u's due states due now (due_at one second ago).
CREATE FUNCTION pg_temp.due(u bigint) RETURNS void
LANGUAGE sql AS $$ UPDATE chat.push_state SET due_at = now() - interval '1 second' WHERE user_id = u AND due_at IS NOT NULL $$;
-- The last alert of u an hour ago (past push_interval), and due now.
CREATE FUNCTION pg_temp.later(u bigint) RETURNS void
LANGUAGE sql AS $$
	UPDATE chat.push_state SET pushed_at = now() - interval '1 hour' WHERE user_id = u AND pushed_at IS NOT NULL;
	UPDATE chat.push_state SET due_at = now() - interval '1 second' WHERE user_id = u AND due_at IS NOT NULL;
$$;
-- The leases of u's sends over: claimable again.
CREATE FUNCTION pg_temp.expire(u bigint) RETURNS void
LANGUAGE sql AS $$ UPDATE chat.push_sends SET next_at = now() - interval '1 second' WHERE user_id = u $$;

-- Every claim's rows, by call.
CREATE TEMP TABLE claimed (n serial PRIMARY KEY, call int NOT NULL, j jsonb NOT NULL);
CREATE FUNCTION pg_temp.claim(worker text DEFAULT 't', max_rows int DEFAULT 1000, lease int DEFAULT 60,
	scan int DEFAULT 500, kinds text[] DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	c int := (SELECT coalesce(max(call), 0) + 1 FROM claimed);
BEGIN
	INSERT INTO claimed (call, j) SELECT c, x FROM chat.push_claim(worker, max_rows, lease, scan, kinds) AS x;
	RETURN c;
END
$$;
-- u's sends (of chat c) in call k, by kind.
CREATE FUNCTION pg_temp.got(k int, u bigint, c bigint DEFAULT NULL) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT coalesce(jsonb_agg(j ORDER BY j ->> 'kind', (j ->> 'send_id')::bigint), '[]') FROM claimed
	WHERE call = k AND (j ->> 'user_id')::bigint = u AND (c IS NULL OR (j ->> 'chat_id')::bigint = c)
$$;
-- "kind type, ..." of u's sends in a new claim ('' when none).
CREATE FUNCTION pg_temp.claim_for(u bigint, c bigint DEFAULT NULL, worker text DEFAULT 't',
	kinds text[] DEFAULT NULL, scan int DEFAULT 500) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	k int := pg_temp.claim(worker, 1000, 60, scan, kinds);
BEGIN
	RETURN (SELECT coalesce(string_agg((e ->> 'kind') || ' ' || (e #>> '{data,type}'), ', ' ORDER BY ord), '')
			FROM jsonb_array_elements(pg_temp.got(k, u, c)) WITH ORDINALITY AS t(e, ord));
END
$$;
-- One push_state row in words.
CREATE FUNCTION pg_temp.st(u bigint, c bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce((SELECT format('pending %s, due %s, clear %s, shown %s, pushed_seq %s', (pending_since IS NOT NULL)::text,
			CASE WHEN due_at IS NULL THEN '-' WHEN due_at <= now() THEN 'now' ELSE 'later' END, clear::text, shown::text, pushed_seq)
		FROM chat.push_state WHERE user_id = u AND chat_id = c), 'no row')
$$;
-- u's sends of chat c as stored: "kind alert|clear worker attempt", by kind.
CREATE FUNCTION pg_temp.sends(u bigint, c bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(format('%s %s %s %s', d.kind, CASE WHEN s.alert THEN 'alert' ELSE 'clear' END,
			coalesce(s.worker, '-'), s.attempt), ', ' ORDER BY d.kind, s.send_id), '')
	FROM chat.push_sends s JOIN chat.devices d USING (device_id) WHERE s.user_id = u AND s.chat_id = c
$$;
-- The send of u's device of kind in chat c.
CREATE FUNCTION pg_temp.send_of(u bigint, c bigint, k text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT s.send_id FROM chat.push_sends s JOIN chat.devices d USING (device_id)
	WHERE s.user_id = u AND s.chat_id = c AND d.kind = k ORDER BY s.send_id DESC LIMIT 1
$$;
-- Run SQL on a dblink connection; the first column of its rows, joined.
CREATE FUNCTION pg_temp.on(conn text, sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink(conn, sql) AS t(r text) $$;
CREATE FUNCTION pg_temp.wait(conn text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	status text;
BEGIN
	SELECT string_agg(r, ',') INTO status FROM dblink_get_result(conn, false) AS t(r text);
	PERFORM * FROM dblink_get_result(conn, false) AS t(r text);
	RETURN status;
END
$$;
CREATE FUNCTION pg_temp.ids(list text) RETURNS bigint[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(x::bigint ORDER BY x::bigint), '{}') FROM unnest(string_to_array(list, ',')) AS x
$$;

-------------------------------------------------------------------------------
-- Concurrent claims (committed rows, dblink). 43100..43119 each have an fcm
-- device and a message from 43199, due.
SELECT is(dblink_connect('setup', pg_temp.connstr()), 'OK', 'setup connection');
SELECT is(dblink_connect('s1', pg_temp.connstr()), 'OK', 'session s1');
SELECT is(dblink_connect('s2', pg_temp.connstr()), 'OK', 'session s2');
SELECT pg_temp.on('setup', $$SELECT count(chat.register_device(u, 'fcm', jsonb_build_object('token', 'fcm-race-' || u)))::text
	FROM generate_series(43100, 43119) AS u$$) AS _ \gset
SELECT pg_temp.on('setup', $$SELECT count(*)::text FROM (
		SELECT chat.send_message(43199, chat.open_chat(43199, 'direct', NULL, u), 'hello ' || u)
		FROM generate_series(43100, 43119) AS u) AS s$$) AS _ \gset
SELECT dblink_exec('setup', $$UPDATE chat.push_state SET due_at = now() - interval '1 second'
	WHERE user_id BETWEEN 43100 AND 43119$$) AS _ \gset
SELECT is(pg_temp.on('setup', $$SELECT count(*)::text FROM chat.push_state WHERE user_id BETWEEN 43100 AND 43119 AND due_at <= now()$$),
	'20', 'twenty committed due states');
SELECT dblink_exec('s2', $$SET statement_timeout = '10s'$$) AS _ \gset

-- s1 turns every due state into sends and leases 8 in an open transaction;
-- s2 meanwhile neither waits nor makes sends of the states s1 holds.
SELECT is(dblink_exec('s1', 'BEGIN'), 'BEGIN', 's1 opens a transaction');
SELECT pg_temp.on('s1', $$SELECT string_agg(x ->> 'send_id', ',') FROM chat.push_claim('s1', 8, 60) AS x$$) AS s1_sends \gset
SELECT pg_temp.on('s2', $$SELECT coalesce(string_agg(x ->> 'send_id', ','), '') FROM chat.push_claim('s2', 20, 60) AS x$$) AS s2_early \gset
SELECT is(cardinality(pg_temp.ids(:'s1_sends')), 8, 's1 claims 8 sends');
SELECT is(:'s2_early'::text, '', 's2, claiming while s1 is open, gets nothing and does not wait');
SELECT is(dblink_exec('s1', 'COMMIT'), 'COMMIT', 's1 commits');
SELECT pg_temp.on('s2', $$SELECT string_agg(x ->> 'send_id', ',') FROM chat.push_claim('s2', 20, 60) AS x$$) AS s2_sends \gset
SELECT is(cardinality(pg_temp.ids(:'s2_sends')), 12, 'then s2 gets the other 12');
SELECT is(pg_temp.ids(:'s1_sends') && pg_temp.ids(:'s2_sends'), false, 'no send is in both');
SELECT is(pg_temp.on('setup', $$SELECT count(*)::text FROM chat.push_sends WHERE user_id BETWEEN 43100 AND 43119$$), '20',
	'one send per device, twenty in all');

-- Racing claims: five rounds of two sessions claiming at once.
CREATE TEMP TABLE rounds (round int, a bigint[], b bigint[], c bigint[]);
DO $$
DECLARE
	r int;
	q text := $q$SELECT coalesce(string_agg(x ->> 'send_id', ','), '') FROM chat.push_claim('%s', 12, 60) AS x$q$;
BEGIN
	FOR r IN 1..5 LOOP
		PERFORM dblink_exec('setup', $s$UPDATE chat.push_sends SET next_at = '-infinity', attempt = 0, worker = NULL
			WHERE user_id BETWEEN 43100 AND 43119$s$);
		PERFORM dblink_send_query('s1', format(q, 's1'));
		PERFORM dblink_send_query('s2', format(q, 's2'));
		INSERT INTO rounds VALUES (r, pg_temp.ids(pg_temp.wait('s1')), pg_temp.ids(pg_temp.wait('s2')),
			pg_temp.ids(pg_temp.on('setup', format(q, 's3'))));
	END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM rounds WHERE NOT (a && b) AND NOT (a && c) AND NOT (b && c)), 5::bigint,
	'in five racing rounds no send went to two sessions');
SELECT is((SELECT count(*) FROM rounds WHERE cardinality(a) + cardinality(b) + cardinality(c) = 20), 5::bigint,
	'and every round all twenty were claimed, once each');

-- Committed rows go before the rest.
SELECT dblink_exec('setup', $$
	WITH c AS (SELECT chat_id FROM chat.chats WHERE user_a = 43199 OR user_b = 43199),
	m AS (DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM c))
	DELETE FROM chat.chats WHERE chat_id IN (SELECT chat_id FROM c)$$) AS _ \gset
SELECT dblink_exec('setup', $$DELETE FROM chat.devices WHERE user_id BETWEEN 43100 AND 43199$$) AS _ \gset
SELECT dblink_exec('setup', $$DELETE FROM chat.push_state WHERE user_id BETWEEN 43100 AND 43199$$) AS _ \gset
SELECT dblink_exec('setup', $$DELETE FROM chat.contacts WHERE user_id BETWEEN 43100 AND 43199 OR peer_id BETWEEN 43100 AND 43199$$) AS _ \gset
SELECT is(pg_temp.on('setup', $$SELECT ((SELECT count(*) FROM chat.members WHERE user_id BETWEEN 43100 AND 43199)
	+ (SELECT count(*) FROM chat.push_sends WHERE user_id BETWEEN 43100 AND 43199)
	+ (SELECT count(*) FROM chat.push_state WHERE user_id BETWEEN 43100 AND 43199))::text$$), '0',
	'the committed rows are gone');
SELECT dblink_disconnect('s1'), dblink_disconnect('s2'), dblink_disconnect('setup') \gset

-------------------------------------------------------------------------------
-- The due state kept by send_message. 43001 writes to 43002 (a device of
-- each kind); 43001 has a device too; 43003 has none.
SELECT is(current_setting('chat.push_delay'), '10s', 'chat.push_delay is 10 s by default');
SELECT is(current_setting('chat.push_interval'), '30s', 'chat.push_interval is 30 s by default');
SELECT chat.open_chat(43001, 'listing', 4300, 43002) AS c1 \gset
SELECT chat.open_chat(43001, 'direct', NULL, 43003) AS c0 \gset
SELECT pg_temp.devices3(43002) AS _ \gset
SELECT pg_temp.fcm(43001) AS _ \gset
SELECT chat.send_message(43001, :c1, 'first') IS NOT NULL AS _ \gset
SELECT chat.send_message(43001, :c0, 'to nobody''s phone') IS NOT NULL AS _ \gset
SELECT is((SELECT (pending_since, due_at)::text FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c1),
	(SELECT (created_at, created_at + interval '10 seconds')::text FROM chat.messages WHERE chat_id = :c1 AND seq = 1),
	'a message makes a due state for the recipient: pending since its time, due push_delay after it');
SELECT is(pg_temp.st(43001, :c1), 'no row', 'never for the sender, device or not');
SELECT is(pg_temp.st(43003, :c0), 'no row', 'nor for a recipient without a device');
SELECT chat.send_message(43001, :c1, 'second') IS NOT NULL AS _ \gset
SELECT is((SELECT (pending_since, due_at)::text FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c1),
	(SELECT (created_at, created_at + interval '10 seconds')::text FROM chat.messages WHERE chat_id = :c1 AND seq = 1),
	'a later message folds in: pending_since and due_at stay the first one''s');

-- The claim: not before due, then one send per device with the data.
SELECT is(pg_temp.claim_for(43002), '', 'not claimed before due_at');
SELECT is(pg_temp.st(43002, :c1), 'pending true, due later, clear false, shown false, pushed_seq 0', 'and still pending');
SELECT pg_temp.due(43002) AS _ \gset
SELECT pg_temp.claim() AS k1 \gset
SELECT is((SELECT jsonb_agg(e ->> 'kind') FROM jsonb_array_elements(pg_temp.got(:k1, 43002)) e), '["apns", "fcm", "webpush"]',
	'due: one send per device of the user');
SELECT is((SELECT jsonb_agg(e -> 'token') FROM jsonb_array_elements(pg_temp.got(:k1, 43002)) e),
	(SELECT jsonb_agg(token ORDER BY kind) FROM chat.devices WHERE user_id = 43002), 'each with its device''s token');
SELECT is((SELECT count(DISTINCT e -> 'data') FROM jsonb_array_elements(pg_temp.got(:k1, 43002)) e), 1::bigint,
	'and the same data');
SELECT is(pg_temp.got(:k1, 43002) -> 0 -> 'data', jsonb_build_object('type', 'alert', 'chat_id', :c1, 'chat_kind', 'listing',
		'peer_id', 43001, 'sender_id', 43001, 'seq', 2, 'count', 2, 'language', 'en', 'attachments', 0,
		'body', 'second', 'badge', 2),
	'the data: alert, chat, sender, count of the folded messages, the newest body, badge = unread_total, language');
SELECT is((SELECT jsonb_agg(e - 'send_id' - 'device_id' - 'token' - 'kind' - 'data') FROM jsonb_array_elements(pg_temp.got(:k1, 43002)) e),
	(SELECT jsonb_agg(jsonb_build_object('user_id', 43002, 'chat_id', :c1, 'alert', true, 'attempt', 1)) FROM generate_series(1, 3)),
	'user, chat, alert, attempt 1');
SELECT is(pg_temp.st(43002, :c1), 'pending false, due -, clear false, shown true, pushed_seq 2', 'the state: shown, told up to 2');
SELECT is((SELECT pushed_at FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c1), now(), 'pushed_at is the claim''s time');
SELECT is(pg_temp.sends(43002, :c1), 'apns alert t 1, fcm alert t 1, webpush alert t 1', 'the sends are leased to the worker');
SELECT is((SELECT count(*) FROM chat.push_sends WHERE user_id = 43002 AND next_at = now() + interval '60 seconds'), 3::bigint,
	'for lease_s');
SELECT is(pg_temp.claim_for(43002), '', 'a leased send is not claimed again before its lease ends');

-- After an alert the next is due push_interval after it at the earliest.
SELECT chat.send_message(43001, :c1, 'third') IS NOT NULL AS _ \gset
SELECT is((SELECT pending_since FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c1),
	(SELECT created_at FROM chat.messages WHERE chat_id = :c1 AND seq = 3), 'a new message after the alert is pending from its time');
SELECT cmp_ok((SELECT due_at - pushed_at FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c1), '>=', interval '30 seconds',
	'and due no sooner than push_interval after the alert');
SELECT cmp_ok((SELECT due_at FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c1), '>=',
	(SELECT created_at + interval '10 seconds' FROM chat.messages WHERE chat_id = :c1 AND seq = 3), 'nor push_delay after the message');
-- due (faked) within push_interval: the claim trusts due_at (the interval is
-- the write path's, from the sender's chat.push_interval, checked above)
SELECT pg_temp.due(43002) AS _ \gset
SELECT pg_temp.expire(43002) AS _ \gset
SELECT count(chat.push_result('t', send_id, 200)) AS _ FROM chat.push_sends WHERE user_id = 43002 AND chat_id = :c1 \gset
SELECT pg_temp.claim() AS k2 \gset
SELECT is(pg_temp.got(:k2, 43002) -> 0 -> 'data' ->> 'count', '1', 'due: an alert of the one new message');
-- push_delay follows its setting
SET LOCAL chat.push_delay = 60;
SELECT chat.open_chat(43004, 'direct', NULL, 43002) AS c9 \gset
SELECT chat.send_message(43004, :c9, 'slow') IS NOT NULL AS _ \gset
SELECT is((SELECT due_at - pending_since FROM chat.push_state WHERE user_id = 43002 AND chat_id = :c9), interval '60 seconds',
	'chat.push_delay = 60: due 60 s after the message');
RESET chat.push_delay;

-------------------------------------------------------------------------------
-- The rules at send time. 43010 writes to 43011..43022, each with an fcm device.
SELECT count(pg_temp.fcm(u)) AS _ FROM generate_series(43011, 43022) AS u \gset
CREATE TEMP TABLE rc (u bigint PRIMARY KEY, c bigint NOT NULL);
INSERT INTO rc SELECT u, chat.open_chat(43010, 'direct', NULL, u) FROM generate_series(43011, 43022) AS u;
SELECT count(chat.send_message(43010, c, 'hi ' || u)) AS _ FROM rc WHERE u BETWEEN 43011 AND 43019 \gset
SELECT c AS r11 FROM rc WHERE u = 43011 \gset
SELECT c AS r12 FROM rc WHERE u = 43012 \gset
SELECT c AS r13 FROM rc WHERE u = 43013 \gset
SELECT c AS r14 FROM rc WHERE u = 43014 \gset
SELECT c AS r15 FROM rc WHERE u = 43015 \gset
SELECT c AS r16 FROM rc WHERE u = 43016 \gset
SELECT c AS r17 FROM rc WHERE u = 43017 \gset
SELECT c AS r18 FROM rc WHERE u = 43018 \gset
SELECT c AS r19 FROM rc WHERE u = 43019 \gset
SELECT c AS r20 FROM rc WHERE u = 43020 \gset
SELECT c AS r21 FROM rc WHERE u = 43021 \gset
SELECT c AS r22 FROM rc WHERE u = 43022 \gset

-- read in time
SELECT chat.mark_read(43011, :r11, 1) IS NOT NULL AS _ \gset
SELECT is(pg_temp.st(43011, :r11), 'pending false, due -, clear false, shown false, pushed_seq 0', 'read in time: nothing due');
-- online
INSERT INTO chat.presence (user_id, relay_id) VALUES (43012, 't430');
-- last seen 10 s ago
INSERT INTO chat.last_seen (user_id, last_seen) VALUES (43013, now() - interval '10 seconds');
-- muted; blocked either way; push off; no device left; all deleted
SELECT chat.set_muted(43014, :r14, true) IS NULL AS _ \gset
SELECT chat.block_user(43015, 43010) IS NULL AS _ \gset
SELECT chat.block_user(43010, 43016) IS NULL AS _ \gset
SELECT chat.set_notify_prefs(43017, '{"push": false}') IS NOT NULL AS _ \gset
SELECT chat.unregister_device(43018, device_id) IS NULL AS _ FROM chat.devices WHERE user_id = 43018 \gset
SELECT chat.delete_message(43010, :r19, 1) IS NOT NULL AS _ \gset
SELECT count(*) AS _ FROM (SELECT pg_temp.due(u) FROM generate_series(43011, 43019) AS u) AS s \gset
SELECT pg_temp.claim() AS k3 \gset
SELECT is((SELECT string_agg(DISTINCT j ->> 'user_id', ',') FROM claimed WHERE call = :k3
		   AND (j ->> 'user_id')::bigint BETWEEN 43011 AND 43019), NULL,
	'read, online, seen 10 s ago, muted, blocked either way, push off, no device, all deleted: no send');
SELECT is(pg_temp.st(43012, :r12), 'pending false, due -, clear false, shown false, pushed_seq 1',
	'online: seen live, told up to its seq');
SELECT is(pg_temp.st(43013, :r13), 'pending true, due later, clear false, shown false, pushed_seq 0', 'seen 10 s ago: still pending');
SELECT is((SELECT due_at FROM chat.push_state WHERE user_id = 43013), now() + interval '20 seconds',
	'put off until 30 s after last_seen');
SELECT is(pg_temp.st(43014, :r14), 'pending false, due -, clear false, shown false, pushed_seq 1', 'muted: dropped, told');
SELECT is(pg_temp.st(43015, :r15) || '; ' || pg_temp.st(43016, :r16),
	'pending false, due -, clear false, shown false, pushed_seq 1; pending false, due -, clear false, shown false, pushed_seq 1',
	'blocked by the recipient or by the sender: dropped');
SELECT is(pg_temp.st(43017, :r17), 'pending false, due -, clear false, shown false, pushed_seq 1', 'push off: dropped');
SELECT is(pg_temp.st(43018, :r18), 'no row', 'no device left: the state row is deleted');
SELECT is(pg_temp.st(43019, :r19), 'pending false, due -, clear false, shown false, pushed_seq 1', 'every new message deleted: dropped');
UPDATE chat.last_seen SET last_seen = now() - interval '40 seconds' WHERE user_id = 43013;
SELECT pg_temp.due(43013) AS _ \gset
SELECT is(pg_temp.claim_for(43013), 'fcm alert', 'last seen 40 s ago: the put-off alert is sent');
DELETE FROM chat.presence WHERE user_id = 43012;
SELECT pg_temp.due(43012) AS _ \gset
SELECT is(pg_temp.claim_for(43012), '', 'what was seen live is not pushed once the user is gone');

-- preview off, language; a long body; an attachment-only message
SELECT chat.set_notify_prefs(43020, '{"preview": false, "language": "sr"}') IS NOT NULL AS _ \gset
SELECT chat.send_message(43010, :r20, 'secret') IS NOT NULL AS _ \gset
SELECT chat.send_message(43010, :r21, repeat('я', 1500)) IS NOT NULL AS _ \gset
SELECT chat.configure_storage(jsonb_build_object('endpoint', 'http://minio.internal:9000', 'public_endpoint', 'https://files.example.test',
	'bucket', 'chat-test', 'region', 'eu-central-1', 'access_key', 'AKPGTAP', 'secret_key', 'pgtap-secret')) IS NOT NULL AS _ \gset
SELECT (chat.attachment_upload(43010, :r22, 'a.png', 'image/png', 10) ->> 'attachment_id')::bigint AS att1 \gset
SELECT (chat.attachment_upload(43010, :r22, 'b.pdf', 'application/pdf', 20) ->> 'attachment_id')::bigint AS att2 \gset
SELECT chat.send_message(43010, :r22, '', NULL, ARRAY[:att1, :att2]) IS NOT NULL AS _ \gset
SELECT count(*) AS _ FROM (SELECT pg_temp.due(u) FROM generate_series(43020, 43022) AS u) AS s \gset
SELECT pg_temp.claim() AS k4 \gset
SELECT is((pg_temp.got(:k4, 43020) -> 0 -> 'data') - 'chat_id' - 'badge',
	'{"type": "alert", "chat_kind": "direct", "peer_id": 43010, "sender_id": 43010, "seq": 1, "count": 1,
	  "language": "sr", "attachments": 0}'::jsonb, 'preview off: no body; the user''s language');
SELECT is(pg_temp.got(:k4, 43021) #>> '{0,data,body}', repeat('я', 1000), 'a long body is cut to 1,000 characters');
SELECT is(coalesce(pg_temp.got(:k4, 43022) #>> '{0,data,body}', ''), '', 'an attachment-only message: no body');
SELECT is(pg_temp.got(:k4, 43022) #>> '{0,data,attachments}', '2', 'and its attachment count');
-- the newest 10 new messages deleted, an older one not: it is told
SELECT pg_temp.fcm(43023) AS _ \gset
SELECT chat.open_chat(43010, 'direct', NULL, 43023) AS r23 \gset
SELECT count(chat.send_message(43010, :r23, 'm' || i)) AS _ FROM generate_series(1, 12) AS i \gset
SELECT count(chat.delete_message(43010, :r23, i)) AS _ FROM generate_series(3, 12) AS i \gset
SELECT pg_temp.due(43023) AS _ \gset
SELECT pg_temp.claim() AS k8 \gset
SELECT is(pg_temp.got(:k8, 43023) #>> '{0,data,body}', 'm2', 'the newest 10 new messages deleted: the one before them is told');

-------------------------------------------------------------------------------
-- Clears. 43031 writes to 43030 (a device of each kind); 43032's chat with
-- 43030 keeps one unread message (the badge).
SELECT pg_temp.devices3(43030) AS _ \gset
SELECT chat.open_chat(43031, 'direct', NULL, 43030) AS cc \gset
SELECT chat.open_chat(43032, 'direct', NULL, 43030) AS cb \gset
SELECT chat.send_message(43032, :cb, 'unread elsewhere') IS NOT NULL AS _ \gset
DELETE FROM chat.push_state WHERE user_id = 43030 AND chat_id = :cb;
SELECT chat.send_message(43031, :cc, 'one') IS NOT NULL AS _ \gset
SELECT chat.send_message(43031, :cc, 'two') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43030) AS _ \gset
SELECT is(pg_temp.claim_for(43030, :cc), 'apns alert, fcm alert, webpush alert', 'an alert to each device');
SELECT count(chat.push_result('t', send_id, 201)) AS _ FROM chat.push_sends WHERE user_id = 43030 \gset
SELECT chat.mark_read(43030, :cc, 1) IS NOT NULL AS _ \gset
SELECT is(pg_temp.st(43030, :cc), 'pending false, due -, clear false, shown true, pushed_seq 2', 'a partial read: no clear due');
SELECT is(pg_temp.claim_for(43030, :cc), '', 'and none sent');
SELECT chat.mark_read(43030, :cc, 2) IS NOT NULL AS _ \gset
SELECT is(pg_temp.st(43030, :cc), 'pending false, due now, clear true, shown true, pushed_seq 2', 'read to the end: a clear is due now');
SELECT pg_temp.claim() AS k5 \gset
SELECT is((SELECT string_agg((e ->> 'kind') || ' ' || (e ->> 'alert'), ', ') FROM jsonb_array_elements(pg_temp.got(:k5, 43030, :cc)) e),
	'apns false, fcm false, webpush false', 'a clear to each device (not an alert)');
SELECT is(pg_temp.got(:k5, 43030, :cc) -> 0 -> 'data', jsonb_build_object('type', 'clear', 'chat_id', :cc, 'badge', 1),
	'its data: clear, the chat, badge = unread_total');
SELECT is(pg_temp.st(43030, :cc), 'pending false, due -, clear false, shown false, pushed_seq 2', 'cleared: nothing shown');
SELECT count(chat.push_result('t', send_id, 200)) AS _ FROM chat.push_sends WHERE user_id = 43030 \gset
-- read in time without a shown alert: no clear
SELECT chat.send_message(43031, :cc, 'three') IS NOT NULL AS _ \gset
SELECT chat.mark_read(43030, :cc, 3) IS NOT NULL AS _ \gset
SELECT is(pg_temp.st(43030, :cc), 'pending false, due -, clear false, shown false, pushed_seq 2', 'read with no alert shown: no clear due');
SELECT pg_temp.later(43030) AS _ \gset
SELECT is(pg_temp.claim_for(43030, :cc), '', 'none sent');
-- the recipient replying clears their shown alert
SELECT chat.send_message(43031, :cc, 'four') IS NOT NULL AS _ \gset
SELECT pg_temp.later(43030) AS _ \gset
SELECT is(pg_temp.claim_for(43030, :cc), 'apns alert, fcm alert, webpush alert', 'a new alert');
SELECT count(chat.push_result('t', send_id, 200)) AS _ FROM chat.push_sends WHERE user_id = 43030 \gset
SELECT chat.send_message(43030, :cc, 'my reply') IS NOT NULL AS _ \gset
SELECT is(pg_temp.st(43030, :cc), 'pending false, due now, clear true, shown true, pushed_seq 4', 'replying: a clear of one''s own alert is due');
SELECT is(pg_temp.st(43031, :cc), 'no row', 'and the other member (no device) has no state');
SELECT pg_temp.claim() AS k6 \gset
SELECT is((SELECT string_agg((e ->> 'kind') || ' ' || (e #>> '{data,type}') || ' ' || (e #>> '{data,badge}'), ', ')
		   FROM jsonb_array_elements(pg_temp.got(:k6, 43030, :cc)) e),
	'apns clear 1, fcm clear 1, webpush clear 1', 'the clear is sent to each device');

-------------------------------------------------------------------------------
-- Superseding, and the kinds filter. 43040 has an fcm device; 43041 writes.
SELECT pg_temp.fcm(43040) AS d40 \gset
SELECT chat.open_chat(43041, 'direct', NULL, 43040) AS cs \gset
SELECT chat.send_message(43041, :cs, 'm1') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43040) AS _ \gset
SELECT is(pg_temp.claim_for(43040, kinds => '{apns,webpush}'), '', 'kinds {apns,webpush}: the fcm alert is made, not leased');
SELECT is(pg_temp.sends(43040, :cs), 'fcm alert - 0', 'it waits unleased');
SELECT chat.mark_read(43040, :cs, 1) IS NOT NULL AS _ \gset
SELECT is(pg_temp.claim_for(43040, kinds => '{apns}'), '', 'read: the clear is made, not leased');
SELECT is(pg_temp.sends(43040, :cs), 'fcm clear - 0', 'the clear replaced the alert not leased');
SELECT is(pg_temp.claim_for(43040, kinds => '{fcm}'), 'fcm clear', 'kinds {fcm}: the fcm send is leased');
SELECT chat.send_message(43041, :cs, 'm2') IS NOT NULL AS _ \gset
SELECT pg_temp.later(43040) AS _ \gset
SELECT is(pg_temp.claim_for(43040, kinds => '{apns}'), '', 'a new alert is made');
SELECT is(pg_temp.sends(43040, :cs), 'fcm clear t 1, fcm alert - 0', 'the leased clear is not touched');
-- a send waiting for its retry is not leased: replaced too
SELECT count(chat.push_result('t', send_id, 200)) AS _ FROM chat.push_sends WHERE user_id = 43040 AND NOT alert \gset
SELECT is(pg_temp.claim_for(43040), 'fcm alert', 'the alert is leased');
SELECT is(chat.push_result('t', pg_temp.send_of(43040, :cs, 'fcm'), 503), 'retry', 'and fails');
SELECT chat.mark_read(43040, :cs, 2) IS NOT NULL AS _ \gset
SELECT is(pg_temp.claim_for(43040), 'fcm clear', 'read: the clear goes out at once');
SELECT is(pg_temp.sends(43040, :cs), 'fcm clear t 1', 'and the alert waiting for its retry is gone');
-- three kinds, claimed by kind
SELECT pg_temp.devices3(43042) AS _ \gset
SELECT chat.open_chat(43041, 'direct', NULL, 43042) AS ck \gset
SELECT chat.send_message(43041, :ck, 'k') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43042) AS _ \gset
SELECT is(pg_temp.claim_for(43042, kinds => '{fcm}'), 'fcm alert', 'kinds {fcm} leases only the fcm send');
SELECT is(pg_temp.sends(43042, :ck), 'apns alert - 0, fcm alert t 1, webpush alert - 0', 'the others wait');
SELECT is(pg_temp.claim_for(43042, kinds => '{webpush,apns}'), 'apns alert, webpush alert', 'kinds {webpush,apns}: the other two');
-- a clear of one chat leaves the device's sends of another chat alone
SELECT chat.open_chat(43043, 'direct', NULL, 43042) AS ck2 \gset
SELECT chat.send_message(43043, :ck2, 'other chat') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43042) AS _ \gset
SELECT is(pg_temp.claim_for(43042, kinds => '{none}'), '', 'an alert of another chat, not leased');
SELECT count(chat.push_result('t', send_id, 200)) AS _ FROM chat.push_sends WHERE user_id = 43042 AND chat_id = :ck \gset
SELECT chat.mark_read(43042, :ck, 1) IS NOT NULL AS _ \gset
SELECT is(pg_temp.claim_for(43042, kinds => '{none}'), '', 'the first chat read: its clear is made');
SELECT is(pg_temp.sends(43042, :ck) || '; ' || pg_temp.sends(43042, :ck2),
	'apns clear - 0, fcm clear - 0, webpush clear - 0; apns alert - 0, fcm alert - 0, webpush alert - 0',
	'the other chat''s alerts are kept');

-------------------------------------------------------------------------------
-- Leases. 43050 has an fcm device.
SELECT pg_temp.fcm(43050) AS _ \gset
SELECT chat.open_chat(43051, 'direct', NULL, 43050) AS cl \gset
SELECT chat.send_message(43051, :cl, 'lease') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43050) AS _ \gset
CREATE TEMP TABLE crashes (i int, got text);
DO $$
DECLARE
	k int;
BEGIN
	FOR i IN 1..6 LOOP
		k := pg_temp.claim();
		INSERT INTO crashes VALUES (i, coalesce((SELECT string_agg(e ->> 'attempt', ',') FROM jsonb_array_elements(pg_temp.got(k, 43050)) e), '-'));
		IF i = 1 THEN
			INSERT INTO crashes VALUES (0, coalesce((SELECT string_agg(e ->> 'attempt', ',') FROM jsonb_array_elements(pg_temp.got(pg_temp.claim(), 43050)) e), '-'));
		END IF;
		PERFORM pg_temp.expire(43050);
	END LOOP;
END
$$;
SELECT is((SELECT got FROM crashes WHERE i = 0), '-', 'within its lease a send is not claimed again');
SELECT is((SELECT array_agg(got ORDER BY i) FROM crashes WHERE i > 0), ARRAY['1', '2', '3', '4', '5', '-'],
	'after its lease it is, attempt 2, 3, ...; claimed five times without a result it is not handed out again');
SELECT is(pg_temp.sends(43050, :cl), '', 'and is deleted');

-------------------------------------------------------------------------------
-- push_result. 43060 has a device of each kind and chats with 43061 and 43062.
SELECT pg_temp.devices3(43060) AS _ \gset
SELECT chat.open_chat(43061, 'direct', NULL, 43060) AS ca \gset
SELECT chat.open_chat(43062, 'direct', NULL, 43060) AS cz \gset
SELECT chat.send_message(43061, :ca, 'a') IS NOT NULL AS _ \gset
SELECT chat.send_message(43062, :cz, 'z') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43060) AS _ \gset
SELECT is(pg_temp.claim_for(43060), 'apns alert, apns alert, fcm alert, fcm alert, webpush alert, webpush alert', 'two alerts per device');
SELECT is(chat.push_result('t', pg_temp.send_of(43060, :ca, 'fcm'), 200), 'sent', '200: sent');
SELECT is(pg_temp.sends(43060, :ca), 'apns alert t 1, webpush alert t 1', 'and the row is gone');
SELECT is(chat.push_result('t', pg_temp.send_of(43060, :ca, 'webpush'), 410, 'Gone', true), 'gone', 'gone: gone');
SELECT is((SELECT count(*) FROM chat.devices WHERE user_id = 43060 AND kind = 'webpush'), 0::bigint, 'the device is deleted');
SELECT is(pg_temp.sends(43060, :cz), 'apns alert t 1, fcm alert t 1', 'with its send of the other chat');
SELECT pg_temp.send_of(43060, :ca, 'apns') AS sa \gset
SELECT is(chat.push_result('t', :sa, 503, 'unavailable'), 'retry', '503: retry');
SELECT is((SELECT format('%s %s %s', next_at - now(), coalesce(worker, '-'), last_error) FROM chat.push_sends WHERE send_id = :sa),
	'00:00:05 - unavailable', 'after 5 s, not leased, the error kept');
SELECT is(pg_temp.claim_for(43060), '', 'not claimed before');
UPDATE chat.push_sends SET next_at = now() - interval '1 second' WHERE send_id = :sa;
SELECT is(pg_temp.claim_for(43060), 'apns alert', 'claimed after');
SELECT is(chat.push_result('t', :sa, 429, 'slow down', false, 120), 'retry', '429 with Retry-After 120 at attempt 2: retry');
SELECT is((SELECT next_at - now() FROM chat.push_sends WHERE send_id = :sa), interval '120 seconds',
	'after the Retry-After (120 s), not the 30 s of the backoff');
UPDATE chat.push_sends SET next_at = now() - interval '1 second' WHERE send_id = :sa;
SELECT pg_temp.claim() AS _ \gset
SELECT is(chat.push_result('t', :sa, 0, 'timeout'), 'retry', 'status 0 (no answer) at attempt 3: retry');
SELECT is((SELECT next_at - now() FROM chat.push_sends WHERE send_id = :sa), interval '2 minutes', 'after 2 min');
UPDATE chat.push_sends SET next_at = now() - interval '1 second' WHERE send_id = :sa;
SELECT pg_temp.claim() AS _ \gset
SELECT is(chat.push_result('t', :sa, 500, NULL, false, 5), 'retry', '500 at attempt 4: retry');
SELECT is((SELECT next_at - now() FROM chat.push_sends WHERE send_id = :sa), interval '10 minutes',
	'after 10 min (a shorter Retry-After does not shorten it)');
UPDATE chat.push_sends SET next_at = now() - interval '1 second' WHERE send_id = :sa;
SELECT pg_temp.claim() AS _ \gset
SELECT is(chat.push_result('t', :sa, 502), 'dropped', 'a failure at the fifth attempt: dropped');
SELECT is(chat.push_result('t', pg_temp.send_of(43060, :cz, 'apns'), 400, 'BadDeviceToken'), 'dropped', '400: dropped');
SELECT is(pg_temp.sends(43060, :cz), 'fcm alert t 1', 'and the row is gone');
-- another worker took the lease since
SELECT pg_temp.send_of(43060, :cz, 'fcm') AS sf \gset
UPDATE chat.push_sends SET next_at = now() - interval '1 second' WHERE send_id = :sf;
SELECT is(pg_temp.claim_for(43060, worker => 'w2'), 'fcm alert', 'the lease ended: w2 claims it');
SELECT is(chat.push_result('t', :sf, 500), 'stale', 'a failure from the first worker: stale');
SELECT is(pg_temp.sends(43060, :cz), 'fcm alert w2 2', 'and w2''s lease stays');
SELECT is(chat.push_result('t', :sf, 200), 'sent', 'a success from the first worker still counts: sent');
SELECT is(pg_temp.sends(43060, :cz), '', 'the row is gone');
SELECT is(chat.push_result('w2', :sf, 200), 'stale', 'then w2''s result: stale');
SELECT is(chat.push_result('t', 9000000000000, 200), 'stale', 'an unknown send_id: stale');
SELECT throws_ok($$SELECT chat.push_result(NULL, 1, 200)$$, '22023', 'worker, send_id, status and gone must not be null', 'a NULL worker');
SELECT throws_ok($$SELECT chat.push_result('t', NULL, 200)$$, '22023', 'worker, send_id, status and gone must not be null', 'a NULL send_id');
SELECT throws_ok($$SELECT chat.push_result('t', 1, NULL)$$, '22023', 'worker, send_id, status and gone must not be null', 'a NULL status');
SELECT throws_ok($$SELECT chat.push_result('t', 1, 200, NULL, NULL)$$, '22023', 'worker, send_id, status and gone must not be null', 'a NULL gone');

-------------------------------------------------------------------------------
-- Deleted at claim. An alert read before its retry is leased; a device
-- that moved to another user.
SELECT pg_temp.fcm(43070) AS _ \gset
SELECT chat.open_chat(43071, 'direct', NULL, 43070) AS cr \gset
SELECT chat.send_message(43071, :cr, 'r') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43070) AS _ \gset
SELECT is(pg_temp.claim_for(43070), 'fcm alert', 'an alert');
SELECT is(chat.push_result('t', pg_temp.send_of(43070, :cr, 'fcm'), 503, NULL, false, 7200), 'retry', 'fails: a retry');
SELECT is((SELECT next_at - now() FROM chat.push_sends WHERE user_id = 43070), interval '1 hour', 'a Retry-After of 2 h waits an hour at most');
SELECT chat.mark_read(43070, :cr, 1) IS NOT NULL AS _ \gset
SELECT pg_temp.expire(43070) AS _ \gset
SELECT is(pg_temp.claim_for(43070, scan => 0), '', 'read before the retry (a claim that makes no new sends): not sent');
SELECT is(pg_temp.sends(43070, :cr), '', 'deleted');
SELECT is(pg_temp.claim_for(43070), 'fcm clear', 'and the clear follows');
SELECT pg_temp.fcm(43072) AS d72 \gset
SELECT chat.open_chat(43071, 'direct', NULL, 43072) AS cm \gset
SELECT chat.send_message(43071, :cm, 'for 43072 only') IS NOT NULL AS _ \gset
SELECT pg_temp.due(43072) AS _ \gset
SELECT is(pg_temp.claim_for(43072, kinds => '{apns}'), '', 'an alert for 43072, not leased');
SELECT is(chat.register_device(43073, 'fcm', '{"token": "fcm-43072"}'), :d72::bigint, '43073 registers the same token: the device moves');
SELECT pg_temp.claim() AS k7 \gset
SELECT is((SELECT count(*) FROM claimed WHERE call = :k7 AND (j ->> 'device_id')::bigint = :d72), 0::bigint,
	'the moved device gets none of 43072''s sends');
SELECT is((SELECT count(*) FROM chat.push_sends WHERE device_id = :d72), 0::bigint, 'they are deleted');

-------------------------------------------------------------------------------
-- Arguments.
SELECT throws_ok($$SELECT chat.push_claim(NULL, 1, 60)$$, '22023', 'worker must be a name of 1 to 200 bytes', 'a NULL worker');
SELECT throws_ok($$SELECT chat.push_claim('', 1, 60)$$, '22023', 'worker must be a name of 1 to 200 bytes', 'an empty worker');
SELECT throws_ok(format('SELECT chat.push_claim(%L, 1, 60)', repeat('w', 201)), '22023', 'worker must be a name of 1 to 200 bytes',
	'a worker of 201 bytes');
SELECT throws_ok($$SELECT chat.push_claim('t', 0, 60)$$, '22023', 'max_rows must be between 1 and 10000, not 0', 'max_rows 0');
SELECT throws_ok($$SELECT chat.push_claim('t', 10001, 60)$$, '22023', 'max_rows must be between 1 and 10000, not 10001', 'max_rows 10001');
SELECT throws_ok($$SELECT chat.push_claim('t', NULL, 60)$$, '22023', 'max_rows must be between 1 and 10000, not <NULL>', 'max_rows NULL');
SELECT throws_ok($$SELECT chat.push_claim('t', 1, 0)$$, '22023', 'lease_s must be between 1 and 86400 seconds, not 0', 'lease_s 0');
SELECT throws_ok($$SELECT chat.push_claim('t', 1, 86401)$$, '22023', 'lease_s must be between 1 and 86400 seconds, not 86401', 'lease_s 86401');
SELECT throws_ok($$SELECT chat.push_claim('t', 1, 60, -1)$$, '22023', 'scan_rows must be between 0 and 100000, not -1', 'scan_rows -1');
SELECT throws_ok($$SELECT chat.push_claim('t', 1, 60, 100001)$$, '22023', 'scan_rows must be between 0 and 100000, not 100001', 'scan_rows 100001');

-------------------------------------------------------------------------------
-- push_backlog: due states and due sends.
SELECT pg_temp.claim() AS _ \gset
SELECT due AS b0 FROM chat.push_backlog() \gset
SELECT pg_temp.fcm(43080) AS _ \gset
SELECT pg_temp.fcm(43081) AS _ \gset
SELECT count(chat.send_message(43082, chat.open_chat(43082, 'direct', NULL, u), 'b')) AS _ FROM unnest(ARRAY[43080, 43081]) AS u \gset
SELECT is((SELECT due - :b0 FROM chat.push_backlog()), 0::bigint, 'not yet due: not in the backlog');
UPDATE chat.push_state SET due_at = now() - interval '2 minutes' WHERE user_id IN (43080, 43081);
SELECT is((SELECT due - :b0 FROM chat.push_backlog()), 2::bigint, 'push_backlog counts the two due states');
SELECT cmp_ok((SELECT oldest_due_s FROM chat.push_backlog()), '>=', 120::float8, 'the oldest has waited 2 minutes');
SELECT pg_temp.claim(kinds => '{apns}') AS _ \gset
SELECT is((SELECT due - :b0 FROM chat.push_backlog()), 2::bigint, 'made into sends not leased: still two');
SELECT pg_temp.claim() AS _ \gset
SELECT is((SELECT due FROM chat.push_backlog()), 0::bigint, 'leased: none');

-------------------------------------------------------------------------------
-- Privileges: chat_notify only.
SELECT ok(has_function_privilege('chat_notify', 'chat.push_claim(text, int, int, int, text[])', 'EXECUTE')
	AND has_function_privilege('chat_notify', 'chat.push_result(text, bigint, int, text, boolean, int)', 'EXECUTE')
	AND has_function_privilege('chat_notify', 'chat.push_backlog()', 'EXECUTE'),
	'chat_notify may call push_claim, push_result, push_backlog');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND p.proname LIKE 'push%' AND (has_function_privilege('chat_app', p.oid, 'EXECUTE')
									OR has_function_privilege('chat_relay', p.oid, 'EXECUTE'))$$,
	'chat_app and chat_relay may call none of the push functions');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND p.proname IN ('push_supersede', 'push_fan_out', 'push_alert_data', 'push_materialize')
	AND has_function_privilege('chat_notify', p.oid, 'EXECUTE')$$,
	'the internal push functions are the owner''s only');
SELECT is_empty($$SELECT r.rolname || ' ' || c.relname FROM pg_class c, pg_roles r
	WHERE c.oid IN ('chat.push_state'::regclass, 'chat.push_sends'::regclass)
	AND r.rolname IN ('chat_app', 'chat_relay', 'chat_notify', 'chat_event_reader')
	AND (has_table_privilege(r.oid, c.oid, 'SELECT') OR has_table_privilege(r.oid, c.oid, 'INSERT')
		 OR has_table_privilege(r.oid, c.oid, 'UPDATE') OR has_table_privilege(r.oid, c.oid, 'DELETE'))$$,
	'no role reads or writes push_state or push_sends');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND p.proname IN ('push_claim', 'push_result', 'push_backlog')
	AND (NOT p.prosecdef OR NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp'))$$,
	'they are SECURITY DEFINER with search_path pg_catalog, pg_temp');
SET LOCAL ROLE chat_app;
SELECT throws_ok($$SET chat.push_delay = 0$$, '42501', NULL, 'chat.push_delay is for superusers only');
SELECT throws_ok($$SET chat.push_interval = 0$$, '42501', NULL, 'chat.push_interval too');
SELECT throws_ok($$SELECT chat.push_claim('t', 1, 60)$$, '42501', NULL, 'as chat_app, push_claim fails with 42501');
SELECT throws_ok($$SELECT chat.push_result('t', 1, 200)$$, '42501', NULL, 'as chat_app, push_result fails with 42501');
SELECT throws_ok($$SELECT count(*) FROM chat.push_state$$, '42501', NULL, 'as chat_app, push_state is out of reach');
RESET ROLE;
SET LOCAL ROLE chat_notify;
SELECT lives_ok($$SELECT count(*) FROM chat.push_claim('t', 1, 60)$$, 'as chat_notify, push_claim works');
SELECT is(chat.push_result('t', 9000000000000, 200), 'stale', 'as chat_notify, push_result works');
SELECT lives_ok($$SELECT chat.push_backlog()$$, 'as chat_notify, push_backlog works');
SELECT throws_ok($$SELECT count(*) FROM chat.push_sends$$, '42501', NULL, 'as chat_notify, push_sends is out of reach');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
