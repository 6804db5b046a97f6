-- Presence across relays: rows per (user, relay), the presence events of
-- users coming online anywhere or going offline everywhere (their exact
-- envelopes: no recipients, coarse last_seen, version), presence_update,
-- presence_sync, relay_gone, relay_heartbeat's sweep of dead relays,
-- presence() answers, argument checks, and a sync of 100,000 users. Who may
-- see whom (contacts, blocks) is 096_presence_rule.sql.
--
-- Events need committed transactions, so the calls run over dblink
-- ('sender'); 'listener' runs LISTEN chat_events. To show that a call
-- published nothing, user 9504 is toggled on relay tap-m right after it as
-- a marker: events arrive in commit order, so if the marker is the only new
-- presence event, nothing came before it.
-- Users 9500..9599 and 5000001..5100000, relays tap-*; the committed rows
-- are deleted at the end.
BEGIN;
\ir _helpers.psql
SELECT plan(68);

CREATE FUNCTION pg_temp.remote(sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink('sender', sql) AS t(r text) $$;

-- The relays a user has rows on.
CREATE FUNCTION pg_temp.relays_of(u bigint) RETURNS text[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(relay_id ORDER BY relay_id), '{}') FROM chat.presence WHERE user_id = u
$$;

-- A time rounded down to chat.presence_granularity seconds (of Unix time).
CREATE FUNCTION pg_temp.coarse(t timestamptz) RETURNS timestamptz
LANGUAGE sql AS $$
	SELECT to_timestamp(floor(extract(epoch FROM t) / g) * g)
	FROM (SELECT setting::numeric AS g FROM pg_settings WHERE name = 'chat.presence_granularity') s
$$;

-- The envelope a presence event of u should have, from the stored
-- last_seen (rounded) and version: to no one, relays route it by subscription.
CREATE FUNCTION pg_temp.presence_env(u bigint, online bool) RETURNS text
LANGUAGE sql AS $$
	SELECT format('{"to":[],"ev":{"v":1,"type":"presence","user_id":%s,"online":%s,"last_seen":%s,"version":%s}}',
		u, to_jsonb(online), to_jsonb(pg_temp.coarse(l.last_seen))::text, l.version)
	FROM chat.last_seen l WHERE l.user_id = u
$$;

-- Toggle the marker user 9504 on relay tap-m and wait for its event; the
-- presence events collected meanwhile (the marker's included), in order.
CREATE FUNCTION pg_temp.presence_until_marker() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	coming bool := NOT EXISTS (SELECT FROM chat.presence WHERE user_id = 9504 AND relay_id = 'tap-m');
	first_n int := (SELECT coalesce(max(n), 0) FROM events);
	deadline timestamptz := clock_timestamp() + interval '60 s';
BEGIN
	PERFORM pg_temp.remote(format($f$SELECT chat.presence_update('tap-m', %L, %L)$f$,
		CASE WHEN coming THEN '{9504}' END, CASE WHEN NOT coming THEN '{9504}' END));
	LOOP
		PERFORM pg_temp.drain();
		EXIT WHEN EXISTS (SELECT FROM events WHERE n > first_n
			AND event @> jsonb_build_object('type', 'presence', 'user_id', 9504, 'online', coming));
		IF clock_timestamp() > deadline THEN
			RETURN NULL;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN ARRAY(SELECT format('%s:%s', event ->> 'user_id', event ->> 'online') FROM events
		WHERE n > first_n AND event ->> 'type' = 'presence'
			AND ((event ->> 'user_id')::bigint BETWEEN 9500 AND 9599 OR (event ->> 'user_id')::bigint BETWEEN 5000001 AND 5100000)
		ORDER BY n);
END
$$;

SELECT is(dblink_connect('listener', pg_temp.connstr()), 'OK', 'listener connected');
SELECT is(dblink_exec('listener', 'LISTEN chat_events'), 'LISTEN', 'listener listens on chat_events');
SELECT is(dblink_connect('sender', pg_temp.connstr()), 'OK', 'sender connected');
SELECT lives_ok($$SELECT pg_temp.remote($r$
		DELETE FROM chat.presence WHERE relay_id LIKE 'tap-%';
		DELETE FROM chat.relays WHERE relay_id LIKE 'tap-%';
		DELETE FROM chat.last_seen WHERE user_id BETWEEN 9500 AND 9599 OR user_id BETWEEN 5000001 AND 5100000;
		DELETE FROM chat.contacts WHERE user_id BETWEEN 9500 AND 9599 OR peer_id BETWEEN 9500 AND 9599;
		DELETE FROM chat.chats WHERE user_a BETWEEN 9500 AND 9599 OR user_b BETWEEN 9500 AND 9599$r$)$$,
	'no leftovers of an earlier run');
-- 9500 is a contact of 9501 and 9502, the marker 9504 of 9501 (both wrote
-- in a chat they share); 9503 has no contact.
SELECT lives_ok($$SELECT pg_temp.remote($r$
		SELECT chat.send_message(a, c, 'hi') || chat.send_message(b, c, 'hello')
		FROM (VALUES (9500, 9501), (9502, 9500), (9504, 9501)) p(a, b),
			LATERAL chat.open_chat(a, 'direct', NULL, b) c$r$)$$,
	'9500 and 9501, 9502 and 9500, 9504 and 9501 have written to each other');
SELECT is(pg_temp.remote($$SELECT chat.relay_register('tap-a')$$), 't', 'relay tap-a registers');
SELECT is(chat.relay_register('tap-a'), false, 'a second session cannot register the same relay id');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9504:true'], '(the marker comes online)');

-- Online on a first relay: one event, whatever the number of contacts.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-a', '{9500}', NULL)$r$)$$, '9500 comes online on tap-a');
SELECT is(pg_temp.relays_of(9500), ARRAY['tap-a'], 'a row for (9500, tap-a)');
SELECT is(pg_temp.collect_count('{"type": "presence", "user_id": 9500, "online": true}', 1), 1, 'one presence event');
SELECT is((SELECT env FROM events WHERE event @> '{"type": "presence", "user_id": 9500}' ORDER BY n DESC LIMIT 1),
	pg_temp.presence_env(9500, true),
	'its envelope: no recipients, the user, online, last_seen rounded down, version');
SELECT is((SELECT last_seen FROM chat.last_seen WHERE user_id = 9500) IS NOT NULL, true, 'last_seen is recorded');
SELECT last_seen AS seen1, version AS version1 FROM chat.last_seen WHERE user_id = 9500 \gset

-- A second relay, then losing the first: still online, nothing published.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-b', '{9500}', NULL)$r$)$$, '9500 also on tap-b');
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-a', NULL, '{9500}')$r$)$$, '9500 leaves tap-a');
SELECT is(pg_temp.relays_of(9500), ARRAY['tap-b'], 'only the tap-b row is left');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9504:false'], 'neither change published anything');
SELECT cmp_ok((SELECT last_seen FROM chat.last_seen WHERE user_id = 9500), '>', :'seen1'::timestamptz,
	'last_seen grew with the changes');
SELECT is((SELECT version FROM chat.last_seen WHERE user_id = 9500), (:version1 + 2)::bigint, 'and version, by one each');

-- Repeats change nothing and publish nothing.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-b', '{9500,9500}', NULL);
		SELECT chat.presence_update('tap-a', NULL, '{9500}')$r$)$$, 'online again on tap-b (twice), offline again on tap-a');
SELECT is(pg_temp.relays_of(9500), ARRAY['tap-b'], 'rows unchanged');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9504:true'], 'nothing published');

-- Offline everywhere: the offline event.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-b', NULL, '{9500}')$r$)$$, '9500 leaves tap-b');
SELECT is(pg_temp.relays_of(9500), '{}'::text[], 'no row is left');
SELECT is(pg_temp.collect_count('{"type": "presence", "user_id": 9500, "online": false}', 1), 1, 'one offline event');
SELECT is((SELECT env FROM events WHERE event @> '{"type": "presence", "user_id": 9500}' ORDER BY n DESC LIMIT 1),
	pg_temp.presence_env(9500, false), 'its envelope');

-- A user without contacts: rows, but no event (nobody may hear of them).
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-a', '{9503}', NULL)$r$)$$, '9503 comes online');
SELECT is(pg_temp.relays_of(9503), ARRAY['tap-a'], 'its row');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9504:false'], 'no event for a user without contacts');

-- One update, several users, both directions: events in user id order.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-a', '{9502,9500}', '{9503}')$r$)$$,
	'9500 and 9502 come online, 9503 goes');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9500:true', '9502:true', '9504:true'],
	'9500 and 9502 announced, in user id order (9503 has no contacts)');
SELECT is(concat_ws(' ', pg_temp.relays_of(9500), pg_temp.relays_of(9502), pg_temp.relays_of(9503)),
	'{tap-a} {tap-a} {}', 'rows follow');

-- presence(): the user and contacts only.
SELECT is(ARRAY(SELECT p ->> 'user_id' || ':' || (p ->> 'online') FROM chat.presence(9501, '{9500,9502,9503,9501}') p),
	ARRAY['9500:true', '9501:false'], 'presence() answers for contacts and oneself, not for strangers');
SELECT is((SELECT p FROM chat.presence(9501, '{9500}') p),
	(SELECT jsonb_build_object('user_id', 9500, 'online', true, 'last_seen', pg_temp.coarse(last_seen), 'version', version)
	 FROM chat.last_seen WHERE user_id = 9500), 'with last_seen rounded down and version');

-- presence_sync: rows not in the set go, missing ones come.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_sync('tap-a', '{9503,9502,9503}')$r$)$$,
	'tap-a syncs {9502, 9503}: 9500 goes, 9503 comes, 9502 stays');
SELECT is(ARRAY(SELECT user_id FROM chat.presence WHERE relay_id = 'tap-a' ORDER BY 1), '{9502,9503}'::bigint[], 'tap-a''s rows');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9500:false', '9504:false'], 'only 9500 changed (offline)');

-- relay_gone: its users go offline unless connected elsewhere.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-b', '{9502}', NULL)$r$)$$, '9502 also on tap-b');
SELECT is(pg_temp.remote($$SELECT chat.relay_gone('tap-a')$$), '2', 'relay_gone(tap-a) counts its 2 users');
SELECT is(concat_ws(' ', pg_temp.relays_of(9502), pg_temp.relays_of(9503)), '{tap-b} {}', 'its rows are gone');
SELECT is((SELECT count(*) FROM chat.relays WHERE relay_id = 'tap-a'), 0::bigint, 'and the relay is forgotten');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9504:true'], '9502 is still online on tap-b, 9503 has no contacts: no event');

-- A dead relay (silent, its lock free) is cleared by another's heartbeat.
SELECT lives_ok($$SELECT pg_temp.remote($r$UPDATE chat.relays SET heartbeat_at = now() - interval '1 hour' WHERE relay_id = 'tap-b'$r$)$$,
	'tap-b has been silent for an hour (it never took its lock)');
SELECT cmp_ok(pg_temp.remote($$SELECT chat.relay_heartbeat('tap-m', 15)$$)::int, '>=', 1, 'tap-m''s heartbeat clears relays');
SELECT is((SELECT count(*) FROM chat.relays WHERE relay_id = 'tap-b'), 0::bigint, 'tap-b among them');
SELECT is(pg_temp.relays_of(9502), '{}'::text[], '9502''s tap-b row is gone');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9502:false', '9504:false'], 'and 9502 went offline');

-- Bad arguments.
SELECT is((pg_temp.try($$SELECT chat.presence_update('tap-x', '{1,NULL}', NULL)$$)).state, '22023', 'a null user id is refused');
SELECT is((pg_temp.try($$SELECT chat.presence_sync('tap-x', '{{1},{2}}')$$)).state, '22023', 'a two-dimensional array is refused');
SELECT is((pg_temp.try($$SELECT chat.presence_sync('tap-x', ARRAY(SELECT generate_series(1, 100001))::bigint[])$$)).state,
	'22023', 'more than 100,000 users are refused');

-- 100,000 users in one sync; three of them are contacts of 9501.
SELECT lives_ok($$SELECT pg_temp.remote($r$
		SELECT chat.send_message(a, c, 'hi') || chat.send_message(9501, c, 'hello')
		FROM (VALUES (5000001), (5050000), (5100000)) p(a), LATERAL chat.open_chat(a, 'direct', NULL, 9501) c$r$)$$,
	'5000001, 5050000 and 5100000 have written to 9501 and back');
SELECT coalesce(max(n), 0) AS mark FROM events \gset
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_sync('tap-big', ARRAY(SELECT generate_series(5000001, 5100000))::bigint[])$r$)$$,
	'tap-big syncs 100,000 users');
SELECT is((SELECT count(*) FROM chat.presence WHERE relay_id = 'tap-big'), 100000::bigint, '100,000 rows');
SELECT is(pg_temp.presence_until_marker(), ARRAY['5000001:true', '5050000:true', '5100000:true', '9504:true'],
	'three online events, in user id order, for the users with contacts');
SELECT is((SELECT count(*) FROM events WHERE n > :mark AND event ->> 'type' = 'presence' AND recipients = '{}'
		AND (event ->> 'user_id')::bigint > 5000000), 3::bigint,
	'each to no one in particular');
SELECT clock_timestamp() AS t0 \gset
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_sync('tap-big', ARRAY(SELECT generate_series(5000001, 5100000, 2))::bigint[])$r$)$$,
	'tap-big syncs every other user');
SELECT cmp_ok(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), '<', 60::numeric,
	'in well under a minute (a plan probing chat.presence with a scan per user took five)');
SELECT is((SELECT count(*) FROM chat.presence WHERE relay_id = 'tap-big'), 50000::bigint, '50,000 rows');
SELECT is(pg_temp.presence_until_marker(), ARRAY['5050000:false', '5100000:false', '9504:false'], 'the two with contacts that left are announced');
SELECT is(pg_temp.remote($$SELECT chat.relay_gone('tap-big')$$), '50000', 'relay_gone counts 50,000 users');
SELECT is((SELECT count(*) FROM chat.presence WHERE relay_id = 'tap-big'), 0::bigint, 'no row is left');
SELECT is(pg_temp.presence_until_marker(), ARRAY['5000001:false', '9504:true'], 'the last one with contacts is announced');

-- A user in both lists of one update came, then left.
SELECT lives_ok($$SELECT pg_temp.remote($r$SELECT chat.presence_update('tap-c', '{9501}', '{9501}')$r$)$$,
	'9501 is in both lists of one update on tap-c');
SELECT is(pg_temp.relays_of(9501), '{}'::text[], 'no row is left');
SELECT is(pg_temp.presence_until_marker(), ARRAY['9501:true', '9501:false', '9504:false'],
	'both events, online first');

-- Clean up what the sender committed.
SELECT lives_ok($$SELECT pg_temp.remote($r$
		DELETE FROM chat.presence WHERE relay_id LIKE 'tap-%';
		DELETE FROM chat.relays WHERE relay_id LIKE 'tap-%';
		DELETE FROM chat.last_seen WHERE user_id BETWEEN 9500 AND 9599 OR user_id BETWEEN 5000001 AND 5100000;
		DELETE FROM chat.contacts WHERE user_id BETWEEN 9500 AND 9599 OR peer_id BETWEEN 9500 AND 9599;
		DELETE FROM chat.chats WHERE user_a BETWEEN 9500 AND 9599 OR user_b BETWEEN 9500 AND 9599$r$)$$, 'clean up');
SELECT is(dblink_disconnect('sender'), 'OK', 'sender disconnected');
SELECT is(dblink_disconnect('listener'), 'OK', 'listener disconnected');

SELECT * FROM finish();
ROLLBACK;
