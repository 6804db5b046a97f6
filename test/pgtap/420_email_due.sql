-- Email digests, the database half: pending_since kept by send_message and
-- mark_read; the due rule of chat.email_claim (delay by mode, offline, not
-- muted, archived or blocked, not one's own message, an address and email
-- on, the 24-hour limit per chat, the 7-day window); the digest's JSON
-- (last 3 unread, preview, Message-ID); leases, concurrent claims (dblink),
-- email_result (sent, newer messages, retries with backoff, giving up,
-- a stale worker); the capped scan's resume position; email_backlog;
-- privileges. Time is faked by moving pending_since, last_seen, emailed_at
-- and next_at into the past as the owner. Users 42000..42199; the rows
-- committed for the dblink part are deleted before the rest.
BEGIN;
\ir _helpers.psql
SELECT plan(122);

-- Set a user's preferences (addr NULL: no address).
CREATE FUNCTION pg_temp.prefs(u bigint, mode text, addr text DEFAULT 'user@example.com',
	preview bool DEFAULT true, lang text DEFAULT 'en') RETURNS void
LANGUAGE sql AS $$
	SELECT FROM chat.set_notify_prefs(u, jsonb_build_object('email', mode, 'email_address', addr,
		'preview', preview, 'language', lang))
$$;

-- Move u's pending chats back in time: pending_since = now() - ago.
CREATE FUNCTION pg_temp.pending_ago(u bigint, ago interval) RETURNS void
LANGUAGE sql AS $$
	UPDATE chat.members SET pending_since = now() - ago WHERE user_id = u AND pending_since IS NOT NULL
$$;

-- Every claim's rows, by call.
CREATE TEMP TABLE claimed (n serial PRIMARY KEY, call int NOT NULL, user_id bigint NOT NULL, j jsonb NOT NULL);
CREATE FUNCTION pg_temp.claim(worker text DEFAULT 't', max_users int DEFAULT 1000, lease int DEFAULT 60,
	scan int DEFAULT 2000) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	c int := (SELECT coalesce(max(call), 0) + 1 FROM claimed);
BEGIN
	INSERT INTO claimed (call, user_id, j)
	SELECT c, (x ->> 'user_id')::bigint, x FROM chat.email_claim(worker, max_users, lease, scan) AS x;
	RETURN c;
END
$$;
-- u's digest in a new claim (NULL: not claimed).
CREATE FUNCTION pg_temp.claim_for(u bigint, worker text DEFAULT 't') RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	c int := pg_temp.claim(worker);
BEGIN
	RETURN (SELECT j FROM claimed WHERE call = c AND user_id = u);
END
$$;
-- The users of one claim call.
CREATE FUNCTION pg_temp.users_of(c int) RETURNS bigint[]
LANGUAGE sql AS $$ SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM claimed WHERE call = c $$;
-- covered of a digest, as the daemon passes it to email_result.
CREATE FUNCTION pg_temp.covered(j jsonb) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_agg(jsonb_build_object('chat_id', c -> 'chat_id', 'up_to_seq', c -> 'up_to_seq'))
	FROM jsonb_array_elements(j -> 'chats') AS c
$$;
-- One member's email state.
CREATE FUNCTION pg_temp.mstate(c bigint, u bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT format('pending %s, notified_seq %s, emailed %s', (pending_since IS NOT NULL)::text, notified_seq, (emailed_at IS NOT NULL)::text)
	FROM chat.members WHERE chat_id = c AND user_id = u
$$;
-- A user's lease / retry: seconds until next_at, attempt, worker.
CREATE FUNCTION pg_temp.lease(u bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT format('in %s s, attempt %s, worker %s', round(extract(epoch FROM next_at - now())), attempt,
		coalesce(worker, '-'))
	FROM chat.email_state WHERE user_id = u
$$;
-- Run SQL on a dblink connection; the first column of its rows, joined.
CREATE FUNCTION pg_temp.on(conn text, sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink(conn, sql) AS t(r text) $$;
-- The result of an async query on a connection (and the end of its results).
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
-- Sorted ids of a comma list.
CREATE FUNCTION pg_temp.ids(list text) RETURNS bigint[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(x::bigint ORDER BY x::bigint), '{}') FROM unnest(string_to_array(list, ',')) AS x
$$;

-- The state columns and their index.
SELECT has_column('chat', 'members', 'pending_since', 'chat.members has pending_since');
SELECT col_not_null('chat', 'members', 'notified_seq', 'notified_seq is NOT NULL');
SELECT has_column('chat', 'members', 'emailed_at', 'chat.members has emailed_at');
SELECT is((SELECT indexdef ~ 'WHERE \(pending_since IS NOT NULL\)' FROM pg_indexes
		   WHERE schemaname = 'chat' AND indexname = 'members_pending'), true,
	'members_pending is a partial index of the pending rows');

-------------------------------------------------------------------------------
-- Concurrent claims (committed rows, dblink). 42100..42119 each have a chat
-- with 42199 and email immediately.
SELECT is(dblink_connect('setup', pg_temp.connstr()), 'OK', 'setup connection');
SELECT is(dblink_connect('s1', pg_temp.connstr()), 'OK', 'session s1');
SELECT is(dblink_connect('s2', pg_temp.connstr()), 'OK', 'session s2');
SELECT pg_temp.on('setup', $$SELECT count(chat.set_notify_prefs(u, jsonb_build_object('email', 'immediately',
	'email_address', u || '@example.com')))::text FROM generate_series(42100, 42119) AS u$$) AS _ \gset
SELECT pg_temp.on('setup', $$SELECT count(*)::text FROM (
		SELECT chat.send_message(42199, chat.open_chat(42199, 'direct', NULL, u), 'hello ' || u)
		FROM generate_series(42100, 42119) AS u) AS s$$) AS _ \gset
SELECT is(pg_temp.on('setup', $$SELECT count(*)::text FROM chat.members WHERE user_id BETWEEN 42100 AND 42119 AND pending_since IS NOT NULL$$),
	'20', 'twenty committed recipients with a pending message');
SELECT dblink_exec('setup', $$UPDATE chat.members SET pending_since = now() - interval '1 minute'
	WHERE user_id BETWEEN 42100 AND 42119 AND pending_since IS NOT NULL$$) AS _ \gset
SELECT dblink_exec('s2', $$SET statement_timeout = '10s'$$) AS _ \gset

-- s1 holds its claim in an open transaction; s2 claims meanwhile.
SELECT is(dblink_exec('s1', 'BEGIN'), 'BEGIN', 's1 opens a transaction');
SELECT pg_temp.on('s1', $$SELECT string_agg(x ->> 'user_id', ',') FROM chat.email_claim('s1', 8, 60) AS x$$) AS s1_users \gset
SELECT pg_temp.on('s2', $$SELECT string_agg(x ->> 'user_id', ',') FROM chat.email_claim('s2', 20, 60) AS x$$) AS s2_users \gset
SELECT is(cardinality(pg_temp.ids(:'s1_users')), 8, 's1 claims 8 users');
SELECT is(cardinality(pg_temp.ids(:'s2_users')), 12, 's2, claiming while s1 is open, takes the other 12 without waiting');
SELECT is(pg_temp.ids(:'s1_users') && pg_temp.ids(:'s2_users'), false, 'no user is in both');
SELECT is(dblink_exec('s1', 'COMMIT'), 'COMMIT', 's1 commits');
SELECT is(pg_temp.on('s2', $$SELECT count(*)::text FROM chat.email_claim('s2', 20, 60)$$), '0',
	'once s1 committed, its users are leased: nobody is left');

-- Racing claims: five rounds of two sessions claiming at once.
CREATE TEMP TABLE rounds (round int, a bigint[], b bigint[], c bigint[]);
DO $$
DECLARE
	r int;
	q text := $q$SELECT coalesce(string_agg(x ->> 'user_id', ','), '') FROM chat.email_claim('%s', 12, 60) AS x$q$;
BEGIN
	FOR r IN 1..5 LOOP
		PERFORM dblink_exec('setup', $s$UPDATE chat.email_state SET next_at = '-infinity', attempt = 0, worker = NULL
			WHERE user_id BETWEEN 42100 AND 42119$s$);
		PERFORM dblink_send_query('s1', format(q, 's1'));
		PERFORM dblink_send_query('s2', format(q, 's2'));
		INSERT INTO rounds VALUES (r, pg_temp.ids(pg_temp.wait('s1')), pg_temp.ids(pg_temp.wait('s2')),
			pg_temp.ids(pg_temp.on('setup', format(q, 's3'))));
	END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM rounds WHERE NOT (a && b) AND NOT (a && c) AND NOT (b && c)), 5::bigint,
	'in five racing rounds no user went to two sessions');
SELECT is((SELECT count(*) FROM rounds WHERE cardinality(a) + cardinality(b) + cardinality(c) = 20), 5::bigint,
	'and every round all twenty were claimed, once each');

-- Committed rows go before the rest.
SELECT dblink_exec('setup', $$
	WITH c AS (SELECT chat_id FROM chat.chats WHERE user_a = 42199 OR user_b = 42199),
	m AS (DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM c))
	DELETE FROM chat.chats WHERE chat_id IN (SELECT chat_id FROM c)$$) AS _ \gset
SELECT dblink_exec('setup', $$DELETE FROM chat.notify_prefs WHERE user_id BETWEEN 42100 AND 42199$$) AS _ \gset
SELECT dblink_exec('setup', $$DELETE FROM chat.email_state WHERE user_id BETWEEN 42100 AND 42199$$) AS _ \gset
SELECT dblink_exec('setup', $$DELETE FROM chat.contacts WHERE user_id BETWEEN 42100 AND 42199 OR peer_id BETWEEN 42100 AND 42199$$) AS _ \gset
SELECT is(pg_temp.on('setup', $$SELECT count(*)::text FROM chat.members WHERE user_id BETWEEN 42100 AND 42199$$), '0',
	'the committed rows are gone');
SELECT dblink_disconnect('s1'), dblink_disconnect('s2'), dblink_disconnect('setup') \gset

-------------------------------------------------------------------------------
-- The capped scan resumes where it stopped. 42040 (online) has three chats
-- pending for 6 days, in front of 42044's, due, pending for 5 days.
SELECT pg_temp.prefs(42040, 'immediately') AS _ \gset
SELECT pg_temp.prefs(42044, 'immediately') AS _ \gset
INSERT INTO chat.presence (user_id, relay_id) VALUES (42040, 't420');
SELECT count(*) AS _ FROM (SELECT count(*) FROM (SELECT chat.send_message(u, chat.open_chat(u, 'direct', NULL, 42040), 'hi') FROM generate_series(42041, 42043) u) s) AS _s \gset
SELECT chat.send_message(42041, chat.open_chat(42041, 'direct', NULL, 42044), 'hi') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42040, '6 days') AS _ \gset
SELECT pg_temp.pending_ago(42044, '5 days') AS _ \gset
UPDATE chat.email_scan SET since = NULL, chat_id = NULL, user_id = NULL;
SELECT is(pg_temp.users_of(pg_temp.claim(scan => 2)), '{}', 'a scan of 2 rows sees only 42040''s chats: nobody');
SELECT is((SELECT since FROM chat.email_scan), now() - interval '6 days', 'and the resume position is past them');
SELECT is(pg_temp.users_of(pg_temp.claim(scan => 2)), '{42044}', 'the next scan of 2 rows goes on and finds 42044');
SELECT is(pg_temp.users_of(pg_temp.claim(scan => 2)), '{}', 'the one after it reaches the window''s end');
SELECT is((SELECT since FROM chat.email_scan), NULL, 'so the next starts from the window''s start');
DELETE FROM chat.presence WHERE user_id = 42040;
UPDATE chat.members SET muted = true WHERE user_id = 42040;

-------------------------------------------------------------------------------
-- pending_since kept by the write path.
SELECT chat.open_chat(42001, 'listing', 4200, 42002) AS c1 \gset
SELECT pg_temp.prefs(42002, '10min', 'seller@example.com', true, 'ru') AS _ \gset
SELECT is(pg_temp.mstate(:c1, 42002), 'pending false, notified_seq 0, emailed false', 'a new chat: nothing pending');
SELECT chat.send_message(42001, :c1, 'first') IS NOT NULL AS _ \gset
SELECT is((SELECT pending_since FROM chat.members WHERE chat_id = :c1 AND user_id = 42002),
	(SELECT created_at FROM chat.messages WHERE chat_id = :c1 AND seq = 1),
	'a message makes it pending for the recipient since its time');
SELECT is(pg_temp.mstate(:c1, 42001), 'pending false, notified_seq 0, emailed false', 'not for the sender');
SELECT chat.send_message(42001, :c1, 'second') IS NOT NULL AS _ \gset
SELECT is((SELECT pending_since FROM chat.members WHERE chat_id = :c1 AND user_id = 42002),
	(SELECT created_at FROM chat.messages WHERE chat_id = :c1 AND seq = 1),
	'a second message keeps the time of the first');

-- The first digest: not before the delay (10 minutes), then once, with the right JSON.
SELECT pg_temp.pending_ago(42002, '9 minutes') AS _ \gset
SELECT is(pg_temp.claim_for(42002), NULL, '10min: not claimed 9 minutes after the message');
SELECT pg_temp.pending_ago(42002, '11 minutes') AS _ \gset
SELECT pg_temp.claim_for(42002) AS d1 \gset
SELECT is(:'d1'::jsonb - 'chats', jsonb_build_object('user_id', 42002, 'email_address', 'seller@example.com',
		'language', 'ru', 'preview', true, 'message_id', 'digest.u42002.c' || :c1 || '.s2', 'attempt', 1),
	'10min: claimed after 11 minutes: address, language, preview, Message-ID, attempt');
SELECT is(:'d1'::jsonb #- '{chats,0,messages}', jsonb_build_object('chats', jsonb_build_array(jsonb_build_object(
		'chat_id', :c1, 'kind', 'listing', 'context_id', 4200, 'peer_id', 42001, 'unread', 2, 'up_to_seq', 2)))
		|| (:'d1'::jsonb - 'chats'),
	'its one chat: id, kind, context, peer, unread, up_to_seq');
SELECT is((SELECT jsonb_agg(m - 'created_at') FROM jsonb_array_elements(:'d1'::jsonb #> '{chats,0,messages}') AS m),
	'[{"seq": 1, "body": "first", "sender_id": 42001, "attachments": 0},
	  {"seq": 2, "body": "second", "sender_id": 42001, "attachments": 0}]'::jsonb,
	'its messages, oldest first, with their bodies');
SELECT is((SELECT array_agg((m ->> 'created_at')::timestamptz) FROM jsonb_array_elements(:'d1'::jsonb #> '{chats,0,messages}') AS m),
	(SELECT array_agg(created_at ORDER BY seq) FROM chat.messages WHERE chat_id = :c1), 'and their times');
SELECT is(pg_temp.lease(42002), 'in 60 s, attempt 1, worker t', 'the user is leased for lease_s');
SELECT is(pg_temp.claim_for(42002), NULL, 'claimed once: a second claim skips the leased user');

-- Sent: notified, emailed, nothing pending; the same messages never again.
SELECT is(chat.email_result('t', 42002, pg_temp.covered(:'d1'), true), 'sent', 'email_result: sent');
SELECT is(pg_temp.mstate(:c1, 42002), 'pending false, notified_seq 2, emailed true', 'the chat is notified up to 2 and emailed');
SELECT is(pg_temp.lease(42002), 'in 0 s, attempt 0, worker -', 'the lease ended');
UPDATE chat.members SET emailed_at = now() - interval '2 days' WHERE chat_id = :c1 AND user_id = 42002;
SELECT is(pg_temp.claim_for(42002), NULL, 'the same messages are not claimed again, even days later');

-- A newer message: after the delay and the 24-hour limit only.
UPDATE chat.members SET emailed_at = now() WHERE chat_id = :c1 AND user_id = 42002;
SELECT chat.send_message(42001, :c1, 'third') IS NOT NULL AS _ \gset
SELECT is(pg_temp.mstate(:c1, 42002), 'pending true, notified_seq 2, emailed true', 'a newer message is pending');
SELECT pg_temp.pending_ago(42002, '11 minutes') AS _ \gset
SELECT is(pg_temp.claim_for(42002), NULL, 'past the delay but emailed just now: the 24-hour limit holds it');
UPDATE chat.members SET emailed_at = now() - interval '23 hours' WHERE chat_id = :c1 AND user_id = 42002;
SELECT is(pg_temp.claim_for(42002), NULL, 'emailed 23 hours ago: still held');
UPDATE chat.members SET emailed_at = now() - interval '25 hours' WHERE chat_id = :c1 AND user_id = 42002;
SELECT pg_temp.claim_for(42002) AS d2 \gset
SELECT is(:'d2'::jsonb ->> 'message_id', 'digest.u42002.c' || :c1 || '.s3', 'emailed 25 hours ago: claimed again, a new Message-ID');
SELECT is((SELECT jsonb_agg(m ->> 'body') FROM jsonb_array_elements(:'d2'::jsonb #> '{chats,0,messages}') AS m),
	'["third"]', 'with only the message after the last email');
SELECT is((:'d2'::jsonb #>> '{chats,0,unread}')::int, 3, 'unread is the chat''s unread count');

-- A message arriving during the lease stays pending after the result.
SELECT chat.send_message(42001, :c1, 'fourth') IS NOT NULL AS _ \gset
SELECT is(chat.email_result('t', 42002, pg_temp.covered(:'d2'), true), 'sent', 'the digest up to 3 is sent');
SELECT is(pg_temp.mstate(:c1, 42002), 'pending true, notified_seq 3, emailed true',
	'the message sent meanwhile keeps the chat pending');
SELECT is((SELECT pending_since FROM chat.members WHERE chat_id = :c1 AND user_id = 42002),
	(SELECT created_at FROM chat.messages WHERE chat_id = :c1 AND seq = 4), 'since its own time');

-- Reading: everything clears it; part keeps it.
SELECT chat.mark_read(42002, :c1, 4) IS NOT NULL AS _ \gset
SELECT is(pg_temp.mstate(:c1, 42002), 'pending false, notified_seq 3, emailed true', 'reading everything leaves nothing pending');
SELECT chat.send_message(42001, :c1, 'five') IS NOT NULL AS _ \gset
SELECT chat.send_message(42001, :c1, 'six') IS NOT NULL AS _ \gset
SELECT chat.mark_read(42002, :c1, 5) IS NOT NULL AS _ \gset
SELECT is(pg_temp.mstate(:c1, 42002), 'pending true, notified_seq 3, emailed true', 'reading part of it keeps it pending');
SELECT chat.send_message(42002, :c1, 'an answer') IS NOT NULL AS _ \gset
SELECT is(pg_temp.mstate(:c1, 42002), 'pending false, notified_seq 3, emailed true', 'answering reads the chat: nothing pending');
SELECT is(pg_temp.mstate(:c1, 42001), 'pending true, notified_seq 0, emailed false', 'the answer is pending for the other side');

-- A user who reads in time gets nothing.
SELECT chat.open_chat(42003, 'direct', NULL, 42004) AS c2 \gset
SELECT pg_temp.prefs(42004, '10min') AS _ \gset
SELECT chat.send_message(42003, :c2, 'quick question') IS NOT NULL AS _ \gset
SELECT chat.mark_read(42004, :c2, 1) IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42004, '1 hour') AS _ \gset
SELECT is(pg_temp.claim_for(42004), NULL, 'read within the delay: never claimed');

-- Online: a presence row, or seen within 30 s.
SELECT chat.open_chat(42005, 'direct', NULL, 42006) AS c3 \gset
SELECT pg_temp.prefs(42006, 'immediately') AS _ \gset
SELECT chat.send_message(42005, :c3, 'are you there') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42006, '1 hour') AS _ \gset
INSERT INTO chat.presence (user_id, relay_id) VALUES (42006, 't420');
SELECT is(pg_temp.claim_for(42006), NULL, 'online (a presence row): not claimed');
DELETE FROM chat.presence WHERE user_id = 42006;
INSERT INTO chat.last_seen (user_id, last_seen) VALUES (42006, now() - interval '10 seconds')
ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen;
SELECT is(pg_temp.claim_for(42006), NULL, 'offline, seen 10 s ago: not claimed');
UPDATE chat.last_seen SET last_seen = now() - interval '40 seconds' WHERE user_id = 42006;
SELECT is(pg_temp.claim_for(42006) ->> 'user_id', '42006', 'seen 40 s ago: claimed');

-- Muted, archived, blocked either way: not claimed, and not pending any more.
SELECT chat.open_chat(42007, 'direct', NULL, 42008) AS c4 \gset
SELECT chat.open_chat(42009, 'direct', NULL, 42010) AS c5 \gset
SELECT chat.open_chat(42011, 'direct', NULL, 42012) AS c6 \gset
SELECT chat.open_chat(42013, 'direct', NULL, 42014) AS c7 \gset
SELECT count(*) AS _ FROM (SELECT pg_temp.prefs(u, 'immediately') FROM unnest(ARRAY[42008, 42010, 42012, 42014]) u) AS _s \gset
SELECT count(*) AS _ FROM (SELECT chat.send_message(a, c, 'hello') IS NOT NULL
FROM (VALUES (42007, :c4), (42009, :c5), (42011, :c6), (42013, :c7)) AS v(a, c)) AS _s \gset
SELECT chat.set_muted(42008, :c4, true) AS _ \gset
SELECT chat.set_archived(42010, :c5, true) AS _ \gset
SELECT chat.block_user(42012, 42011) AS _ \gset
SELECT chat.block_user(42013, 42014) AS _ \gset
SELECT count(*) AS _ FROM (SELECT pg_temp.pending_ago(u, '1 hour') FROM unnest(ARRAY[42008, 42010, 42012, 42014]) u) AS _s \gset
SELECT pg_temp.claim() AS call \gset
SELECT is(pg_temp.users_of(:call) && ARRAY[42008, 42010, 42012, 42014]::bigint[], false,
	'muted, archived, blocking the sender, blocked by the sender: none is claimed');
SELECT is((SELECT count(*) FROM chat.members WHERE user_id IN (42008, 42010, 42012, 42014) AND pending_since IS NOT NULL),
	0::bigint, 'and the scan dropped their pending state (a new message sets it again)');
SELECT chat.set_archived(42010, :c5, false) AS _ \gset
SELECT chat.send_message(42009, :c5, 'still there?') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42010, '1 hour') AS _ \gset
SELECT is(pg_temp.claim_for(42010) ->> 'user_id', '42010', 'unarchived, a new message: claimed');
SELECT chat.set_archived(42010, :c5, true) AS _ \gset
SELECT chat.send_message(42009, :c5, 'hello?') IS NOT NULL AS _ \gset
SELECT is((SELECT archived FROM chat.members WHERE chat_id = :c5 AND user_id = 42010), true,
	'a new message does not unarchive the chat');

-- One's own message does not count.
SELECT chat.open_chat(42015, 'direct', NULL, 42016) AS c8 \gset
SELECT pg_temp.prefs(42015, 'immediately') AS _ \gset
SELECT chat.send_message(42015, :c8, 'from me') IS NOT NULL AS _ \gset
UPDATE chat.members SET pending_since = now() - interval '1 hour' WHERE chat_id = :c8 AND user_id = 42015;
SELECT is(pg_temp.claim_for(42015), NULL, 'the sender''s own message is never in their digest');

-- email off, no address, no preferences: never.
SELECT count(*) AS _ FROM (SELECT chat.open_chat(42016, 'direct', NULL, u) FROM unnest(ARRAY[42017, 42018, 42019]) u) AS _s \gset
SELECT pg_temp.prefs(42017, 'off') AS _ \gset
SELECT pg_temp.prefs(42018, 'immediately', NULL) AS _ \gset
SELECT count(*) AS _ FROM (SELECT chat.send_message(42016, chat.open_chat(42016, 'direct', NULL, u), 'hi') IS NOT NULL
FROM unnest(ARRAY[42017, 42018, 42019]) u) AS _s \gset
SELECT count(*) AS _ FROM (SELECT pg_temp.pending_ago(u, '2 days') FROM unnest(ARRAY[42017, 42018, 42019]) u) AS _s \gset
SELECT pg_temp.claim() AS call \gset
SELECT is(pg_temp.users_of(:call) && ARRAY[42017, 42018, 42019]::bigint[], false,
	'email off, no address, no preferences: none is claimed');
SELECT is((SELECT count(*) FROM chat.members WHERE user_id IN (42017, 42018, 42019) AND pending_since IS NOT NULL),
	0::bigint, 'and none stays pending');

-- immediately: no delay, no 24-hour limit.
SELECT chat.open_chat(42020, 'direct', NULL, 42016) AS c9 \gset
SELECT pg_temp.prefs(42020, 'immediately') AS _ \gset
SELECT chat.send_message(42016, :c9, 'now') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42020, '0') AS _ \gset
SELECT pg_temp.claim_for(42020) AS d3 \gset
SELECT is(:'d3'::jsonb ->> 'user_id', '42020', 'immediately: claimed at once');
SELECT is(chat.email_result('t', 42020, pg_temp.covered(:'d3'), true), 'sent', 'sent');
SELECT chat.send_message(42016, :c9, 'and again') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42020, '0') AS _ \gset
SELECT is(pg_temp.claim_for(42020) ->> 'message_id', 'digest.u42020.c' || :c9 || '.s2',
	'immediately: the next message is claimed at once, emailed or not');

-- hourly and daily.
SELECT count(*) AS _ FROM (SELECT chat.open_chat(42016, 'direct', NULL, u) FROM unnest(ARRAY[42021, 42022]) u) AS _s \gset
SELECT pg_temp.prefs(42021, 'hourly') AS _ \gset
SELECT pg_temp.prefs(42022, 'daily') AS _ \gset
SELECT count(*) AS _ FROM (SELECT chat.send_message(42016, chat.open_chat(42016, 'direct', NULL, u), 'hi') IS NOT NULL FROM unnest(ARRAY[42021, 42022]) u) AS _s \gset
SELECT pg_temp.pending_ago(42021, '59 minutes') AS _ \gset
SELECT pg_temp.pending_ago(42022, '23 hours') AS _ \gset
SELECT pg_temp.claim() AS call \gset
SELECT is(pg_temp.users_of(:call) && ARRAY[42021, 42022]::bigint[], false, 'hourly after 59 minutes, daily after 23 hours: not yet');
SELECT pg_temp.pending_ago(42021, '61 minutes') AS _ \gset
SELECT pg_temp.pending_ago(42022, '25 hours') AS _ \gset
SELECT pg_temp.claim() AS call \gset
SELECT is(pg_temp.users_of(:call) @> ARRAY[42021, 42022]::bigint[], true, 'hourly after 61 minutes, daily after 25 hours: claimed');

-- The 7-day window.
SELECT chat.open_chat(42016, 'direct', NULL, 42025) AS c10 \gset
SELECT pg_temp.prefs(42025, '10min') AS _ \gset
SELECT chat.send_message(42016, :c10, 'old news') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42025, '8 days') AS _ \gset
SELECT is(pg_temp.claim_for(42025), NULL, 'pending for 8 days: never claimed');
SELECT is(pg_temp.mstate(:c10, 42025), 'pending false, notified_seq 0, emailed false', 'and dropped from the pending rows');
SELECT chat.send_message(42016, :c10, 'fresh') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42025, '8 days') AS _ \gset
SELECT chat.send_message(42016, :c10, 'fresher') IS NOT NULL AS _ \gset
SELECT is((SELECT pending_since FROM chat.members WHERE chat_id = :c10 AND user_id = 42025),
	(SELECT created_at FROM chat.messages WHERE chat_id = :c10 AND seq = 3),
	'a message after 7 days pending restarts the clock at its own time');
SELECT pg_temp.pending_ago(42025, '11 minutes') AS _ \gset
SELECT is((SELECT array_agg((m ->> 'seq')::int) FROM jsonb_array_elements(pg_temp.claim_for(42025) #> '{chats,0,messages}') AS m),
	ARRAY[1, 2, 3], 'and is claimed after the delay, with the unread before it');

-- preview false: no body anywhere.
SELECT chat.open_chat(42016, 'direct', NULL, 42027) AS c11 \gset
SELECT pg_temp.prefs(42027, 'immediately', 'private@example.com', false) AS _ \gset
SELECT chat.send_message(42016, :c11, 'the secret text') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42027, '1 minute') AS _ \gset
SELECT pg_temp.claim_for(42027) AS d4 \gset
SELECT is(:'d4'::jsonb ->> 'preview', 'false', 'preview false is claimed with preview false');
SELECT is(:'d4'::jsonb::text ~ '"body"' OR :'d4'::jsonb::text ~ 'secret', false, 'and no body, nor its text, anywhere in it');
SELECT is(jsonb_array_length(:'d4'::jsonb #> '{chats,0,messages}'), 1, 'the message is there without its text');

-- A lease that runs out: claimable again, the same digest.
SELECT chat.open_chat(42016, 'direct', NULL, 42029) AS c12 \gset
SELECT pg_temp.prefs(42029, 'immediately') AS _ \gset
SELECT chat.send_message(42016, :c12, 'lease') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42029, '1 minute') AS _ \gset
SELECT pg_temp.claim_for(42029, 'w1') AS d5 \gset
SELECT is(pg_temp.claim_for(42029, 'w2'), NULL, 'while leased to w1, w2 does not get it');
UPDATE chat.email_state SET next_at = now() - interval '1 second' WHERE user_id = 42029;
SELECT pg_temp.claim_for(42029, 'w2') AS d6 \gset
SELECT is(:'d6'::jsonb ->> 'message_id', :'d5'::jsonb ->> 'message_id', 'after the lease ran out w2 gets it, the same Message-ID');
SELECT is(pg_temp.lease(42029), 'in 60 s, attempt 2, worker w2', 'as attempt 2');
SELECT is(chat.email_result('w1', 42029, pg_temp.covered(:'d5'), false, 'timeout'), 'stale',
	'w1''s late failure is stale: w2 holds the lease');
SELECT is(pg_temp.lease(42029), 'in 60 s, attempt 2, worker w2', 'and changes nothing');
SELECT is(chat.email_result('w1', 42029, pg_temp.covered(:'d5'), true), 'sent', 'w1''s late success still counts');
SELECT is(pg_temp.mstate(:c12, 42029), 'pending false, notified_seq 1, emailed true', 'the chat is marked');
SELECT is(chat.email_result('w2', 42029, pg_temp.covered(:'d6'), true), 'sent', 'w2 reports too (a second email, the lease''s price)');
SELECT is(pg_temp.lease(42029), 'in 0 s, attempt 0, worker -', 'w2''s lease ends');

-- Failures: retried after 1 min, 5 min, 30 min, 2 h, with the same Message-ID; then given up.
SELECT chat.open_chat(42016, 'direct', NULL, 42031) AS c13 \gset
SELECT pg_temp.prefs(42031, 'immediately') AS _ \gset
SELECT chat.send_message(42016, :c13, 'retry me') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42031, '1 minute') AS _ \gset
SELECT pg_temp.claim_for(42031) AS d7 \gset
CREATE TEMP TABLE tries (attempt int, result text, lease text, message_id text);
DO $$
DECLARE
	d jsonb := NULL;
	i int;
BEGIN
	FOR i IN 1..5 LOOP
		IF i > 1 THEN
			UPDATE chat.email_state SET next_at = now() - interval '1 second' WHERE user_id = 42031;
			d := pg_temp.claim_for(42031);
		ELSE
			d := (SELECT j FROM claimed WHERE user_id = 42031 ORDER BY n DESC LIMIT 1);
		END IF;
		INSERT INTO tries VALUES (i, chat.email_result('t', 42031, pg_temp.covered(d), false, '451 greylisted'),
			pg_temp.lease(42031), d ->> 'message_id');
	END LOOP;
END
$$;
SELECT is((SELECT array_agg(result || ' ' || lease ORDER BY attempt) FROM tries), ARRAY[
	'retry in 60 s, attempt 1, worker -', 'retry in 300 s, attempt 2, worker -', 'retry in 1800 s, attempt 3, worker -',
	'retry in 7200 s, attempt 4, worker -', 'dropped in 0 s, attempt 0, worker -'],
	'failures back off 1 min, 5 min, 30 min, 2 h; the fifth gives up');
SELECT is((SELECT count(DISTINCT message_id) FROM tries), 1::bigint, 'every retry had the same Message-ID');
SELECT is((SELECT message_id FROM tries LIMIT 1), 'digest.u42031.c' || :c13 || '.s1', 'the first one''s');
SELECT is(pg_temp.mstate(:c13, 42031), 'pending false, notified_seq 1, emailed false', 'the given-up chat is notified, not emailed');
SELECT is((SELECT dropped FROM chat.email_state WHERE user_id = 42031), 1::bigint, 'and counted');
SELECT is(pg_temp.claim_for(42031), NULL, 'not claimed again');
UPDATE chat.email_state SET next_at = now() - interval '1 second' WHERE user_id = 42031;
SELECT chat.send_message(42016, :c13, 'a new one') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42031, '1 minute') AS _ \gset
SELECT pg_temp.claim_for(42031) AS d8 \gset
SELECT is(chat.email_result('t', 42031, pg_temp.covered(:'d8'), false, 'x'), 'retry', 'a new message starts a new streak');
SELECT is(pg_temp.lease(42031), 'in 60 s, attempt 1, worker -', 'its first retry after 1 min');
SELECT is(pg_temp.claim_for(42031), NULL, 'not before');

-- A digest claimed five times without a result is given up too.
SELECT chat.open_chat(42016, 'direct', NULL, 42032) AS c14 \gset
SELECT pg_temp.prefs(42032, 'immediately') AS _ \gset
SELECT chat.send_message(42016, :c14, 'crash') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42032, '1 minute') AS _ \gset
CREATE TEMP TABLE crashes (i int, got bool);
DO $$
BEGIN
	FOR i IN 1..6 LOOP
		INSERT INTO crashes VALUES (i, pg_temp.claim_for(42032) IS NOT NULL);
		UPDATE chat.email_state SET next_at = now() - interval '1 second' WHERE user_id = 42032;
	END LOOP;
END
$$;
SELECT is((SELECT array_agg(got ORDER BY i) FROM crashes), ARRAY[true, true, true, true, true, false],
	'claimed five times, never reported: not handed out a sixth time');
SELECT is(pg_temp.mstate(:c14, 42032), 'pending false, notified_seq 1, emailed false', 'given up: notified, not emailed');

-- One digest for all of a user's due chats; the last 3 unread of each.
SELECT chat.open_chat(42034, 'direct', NULL, 42033) AS c15 \gset
SELECT chat.open_chat(42035, 'direct', NULL, 42033) AS c16 \gset
SELECT pg_temp.prefs(42033, '10min') AS _ \gset
SELECT count(*) AS _ FROM (SELECT count(*) FROM (SELECT chat.send_message(42034, :c15, 'm' || i) FROM generate_series(1, 5) i) s) AS _s \gset
SELECT chat.send_message(42035, :c16, 'newest') IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42033, '20 minutes') AS _ \gset
SELECT pg_temp.claim_for(42033) AS d9 \gset
SELECT is((SELECT count(*) FROM claimed WHERE user_id = 42033), 1::bigint, 'one digest for the user');
SELECT is((SELECT array_agg((c ->> 'chat_id')::bigint) FROM jsonb_array_elements(:'d9'::jsonb -> 'chats') c),
	ARRAY[:c16, :c15]::bigint[], 'covering both chats, the newest first');
SELECT is(:'d9'::jsonb ->> 'message_id', 'digest.u42033.c' || :c16 || '.s1', 'the Message-ID names the newest message');
SELECT is((SELECT jsonb_agg(m ->> 'body') FROM jsonb_array_elements(:'d9'::jsonb #> '{chats,1,messages}') m),
	'["m3", "m4", "m5"]', 'the last 3 of 5 unread');
SELECT is((:'d9'::jsonb #>> '{chats,1,unread}')::int, 5, 'unread 5');
SELECT is(chat.email_result('t', 42033, pg_temp.covered(:'d9'), true), 'sent', 'sent');
SELECT is(pg_temp.mstate(:c15, 42033) || '; ' || pg_temp.mstate(:c16, 42033),
	'pending false, notified_seq 5, emailed true; pending false, notified_seq 1, emailed true', 'both chats are marked');

-- Unread messages that were all deleted: nothing to tell.
SELECT chat.open_chat(42036, 'direct', NULL, 42037) AS c17 \gset
SELECT pg_temp.prefs(42037, 'immediately') AS _ \gset
SELECT chat.send_message(42036, :c17, 'oops') IS NOT NULL AS _ \gset
SELECT chat.delete_message(42036, :c17, 1) IS NOT NULL AS _ \gset
SELECT pg_temp.pending_ago(42037, '1 minute') AS _ \gset
SELECT is(pg_temp.claim_for(42037), NULL, 'a chat whose unread messages were deleted is not claimed');
SELECT is(pg_temp.mstate(:c17, 42037), 'pending false, notified_seq 1, emailed false', 'and no longer pending');

-- email_backlog: due users not leased, and how long the oldest has waited.
SELECT due_users AS b0 FROM chat.email_backlog() \gset
SELECT count(*) AS _ FROM (SELECT chat.open_chat(42016, 'direct', NULL, u) FROM unnest(ARRAY[42038, 42039]) u) AS _s \gset
SELECT pg_temp.prefs(42038, '10min') AS _ \gset
SELECT pg_temp.prefs(42039, 'immediately') AS _ \gset
SELECT count(*) AS _ FROM (SELECT chat.send_message(42016, chat.open_chat(42016, 'direct', NULL, u), 'wait') IS NOT NULL FROM unnest(ARRAY[42038, 42039]) u) AS _s \gset
SELECT pg_temp.pending_ago(42038, '3 hours') AS _ \gset
SELECT pg_temp.pending_ago(42039, '1 minute') AS _ \gset
SELECT is((SELECT due_users - :b0 FROM chat.email_backlog()), 2::bigint, 'email_backlog counts the two new due users');
SELECT cmp_ok((SELECT oldest_due_s FROM chat.email_backlog()), '>=', 10200::float8,
	'the oldest has been due since its delay passed (2 h 50 min)');
SELECT pg_temp.claim() AS call \gset
SELECT is((SELECT due_users FROM chat.email_backlog()), 0::bigint, 'claimed (leased), they leave the backlog');

-- Arguments.
SELECT throws_ok($$SELECT chat.email_claim('t', 0, 60)$$, '22023', NULL, 'max_users 0 is refused');
SELECT throws_ok($$SELECT chat.email_claim('', 1, 60)$$, '22023', NULL, 'an empty worker is refused');
SELECT throws_ok($$SELECT chat.email_claim('t', 1, 0)$$, '22023', NULL, 'lease_s 0 is refused');
SELECT throws_ok($$SELECT chat.email_result('t', 42002, '{"chat_id": 1}', true)$$, '22023', NULL,
	'covered must be an array');
SELECT throws_ok($$SELECT chat.email_result('t', 42002, '[{"chat_id": "x", "up_to_seq": 1}]', true)$$, '22023', NULL,
	'of numbers');
SELECT throws_ok($$SELECT chat.email_result('t', 42198, '[]', true)$$, '22023', NULL,
	'a user never claimed is refused');

-- Privileges: chat_notify only.
SELECT ok(has_function_privilege('chat_notify', 'chat.email_claim(text, int, int, int)', 'EXECUTE')
	AND has_function_privilege('chat_notify', 'chat.email_result(text, bigint, jsonb, bool, text)', 'EXECUTE')
	AND has_function_privilege('chat_notify', 'chat.email_backlog()', 'EXECUTE'),
	'chat_notify may call email_claim, email_result, email_backlog');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND p.proname LIKE 'email%' AND (has_function_privilege('chat_app', p.oid, 'EXECUTE')
									 OR has_function_privilege('chat_relay', p.oid, 'EXECUTE'))$$,
	'chat_app and chat_relay may call none of the email functions');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND p.proname IN ('email_cover', 'email_scan_due', 'email_due_chats') AND has_function_privilege('chat_notify', p.oid, 'EXECUTE')$$,
	'the internal email functions are the owner''s only');
SELECT is_empty($$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'chat'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	AND (has_table_privilege('chat_notify', c.oid, 'SELECT') OR has_table_privilege('chat_notify', c.oid, 'UPDATE'))$$,
	'chat_notify has no table privilege');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND p.proname IN ('email_claim', 'email_result', 'email_backlog')
	AND (NOT p.prosecdef OR NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp'))$$,
	'they are SECURITY DEFINER with search_path pg_catalog, pg_temp');
SET LOCAL ROLE chat_app;
SELECT throws_ok($$SELECT chat.email_claim('t', 1, 60)$$, '42501', NULL, 'as chat_app, email_claim fails with 42501');
SELECT throws_ok($$SELECT chat.email_result('t', 42002, '[]', true)$$, '42501', NULL, 'as chat_app, email_result fails with 42501');
SELECT throws_ok($$SELECT chat.email_backlog()$$, '42501', NULL, 'as chat_app, email_backlog fails with 42501');
RESET ROLE;
SET LOCAL ROLE chat_notify;
SELECT lives_ok($$SELECT count(*) FROM chat.email_claim('t', 1, 60)$$, 'as chat_notify, email_claim works');
SELECT lives_ok($$SELECT chat.email_backlog()$$, 'as chat_notify, email_backlog works');
SELECT throws_ok($$SELECT count(*) FROM chat.members$$, '42501', NULL, 'as chat_notify, chat.members is out of reach');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
