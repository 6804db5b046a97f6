-- Webhooks: the operator's functions and their refusals, who may call
-- what, the events the write functions record (bodies, type filters,
-- nothing when rolled back or when no endpoint takes the type, not even a
-- query), and the cache of subscribed types across sessions (dblink
-- sessions 'a' and 'b', committed; their rows are deleted at the end).
-- Users 41000..41099; endpoint URLs https://t410.example/…
BEGIN;
\ir _helpers.psql
SELECT plan(124);

CREATE FUNCTION pg_temp.remote(conn text, sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink(conn, sql) AS t(r text) $$;

-- The SQLSTATE of a remote statement, or 'ok' (OTHERS does not catch a
-- cancel: the remote's is re-raised as one).
CREATE FUNCTION pg_temp.remote_state(conn text, sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_temp.remote(conn, sql);
	RETURN 'ok';
EXCEPTION WHEN OTHERS OR query_canceled THEN
	RETURN SQLSTATE;
END
$$;

-- A secret of n random-looking bytes.
CREATE FUNCTION pg_temp.secret(n int, fill text DEFAULT 'a7') RETURNS text
LANGUAGE sql AS $$ SELECT 'whsec_' || replace(encode(decode(repeat(fill, n), 'hex'), 'base64'), E'\n', '') $$;

CREATE FUNCTION pg_temp.add(url text, secret text, types text) RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.outcome(format('SELECT chat.add_webhook(%L, %L, %s)', url, secret, types)) $$;

-- Events recorded for a chat (committed or in this transaction), and deliveries of them.
CREATE FUNCTION pg_temp.events(chat bigint) RETURNS bigint
LANGUAGE sql AS $$ SELECT count(*) FROM chat.webhook_events WHERE chat_id = chat $$;
CREATE FUNCTION pg_temp.types_since(after bigint) RETURNS text[]
LANGUAGE sql AS $$ SELECT coalesce(array_agg(type ORDER BY event_id), '{}') FROM chat.webhook_events WHERE event_id > after $$;
CREATE FUNCTION pg_temp.last_event() RETURNS bigint
LANGUAGE sql AS $$ SELECT coalesce(max(event_id), 0) FROM chat.webhook_events $$;
-- Scans of chat.webhooks by this backend (not yet flushed: compare two).
CREATE FUNCTION pg_temp.webhook_scans() RETURNS bigint
LANGUAGE sql AS $$ SELECT pg_stat_get_xact_numscans('chat.webhooks'::regclass) $$;

-- The cache of subscribed types, across sessions, committed: a backend
-- that knows "none" queries nothing, records as soon as another session
-- committed an endpoint, and stops after it is removed. First: this
-- transaction must not have written to chat.webhook_deliveries, for which
-- remove_webhook waits.
SELECT is(dblink_connect('a', pg_temp.connstr()), 'OK', 'session a connected');
SELECT is(dblink_connect('b', pg_temp.connstr()), 'OK', 'session b connected');
SELECT is(dblink_connect('c', pg_temp.connstr()), 'OK', 'session c connected');
SELECT lives_ok($$SELECT pg_temp.remote('b', $r$
		SELECT count(chat.remove_webhook(endpoint_id))::text FROM chat.webhooks WHERE url LIKE 'https://t410.example/%';
		DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 41000 AND 41099);
		DELETE FROM chat.chats WHERE user_a BETWEEN 41000 AND 41099;
		DELETE FROM chat.contacts WHERE user_id BETWEEN 41000 AND 41099$r$)$$,
	'no leftovers of an earlier run');
SELECT is((SELECT count(*) FROM chat.webhooks), 0::bigint, '(no endpoint at all to start with)');
-- Scans of chat.webhooks in a's transaction (its pending statistics also
-- hold earlier transactions' until they are flushed: hence a difference).
SELECT pg_temp.remote('a', $$
	CREATE FUNCTION pg_temp.scans_before() RETURNS text LANGUAGE sql
	AS 'SELECT set_config(''t410.scans'', pg_stat_get_xact_numscans(''chat.webhooks''::regclass)::text, false)';
	CREATE FUNCTION pg_temp.scans_since() RETURNS text LANGUAGE sql
	AS 'SELECT (pg_stat_get_xact_numscans(''chat.webhooks''::regclass) - current_setting(''t410.scans'')::bigint)::text';
	SELECT 'ok'$$) AS made \gset
SELECT pg_temp.remote('a', $$SELECT chat.open_chat(41001, 'direct', NULL, 41002)::text$$)::bigint AS xc \gset
SELECT is(pg_temp.remote('a', format($$SELECT (chat.send_message(41001, %s, 'one') ->> 'seq')$$, :xc)), '1', 'a sends with no endpoint');
SELECT is(pg_temp.events(:xc), 0::bigint, 'nothing is recorded');
SELECT is(pg_temp.remote('a', format($$BEGIN; SELECT pg_temp.scans_before();
		SELECT chat.send_message(41002, %s, 'two'); SELECT chat.mark_read(41001, %s, 2);
		SELECT chat.block_user(41001, 41099); SELECT pg_temp.scans_since()$$, :xc, :xc)), '0',
	'a backend that knows there is none does not even query chat.webhooks');
SELECT is(pg_temp.remote('a', 'COMMIT; SELECT 1::text'), '1', '(committed)');
SELECT pg_temp.remote('b', format($$SELECT chat.add_webhook('https://t410.example/x', %L, ARRAY['message'])::text$$,
	pg_temp.secret(32)))::bigint AS xe \gset
SELECT is(pg_temp.remote('a', format($$SELECT chat.send_message(41001, %s, 'three') ->> 'seq'$$, :xc)), '3',
	'after b committed an endpoint, a sends again');
SELECT is(pg_temp.events(:xc), 1::bigint, 'and a records the event: it heard of the endpoint');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries d JOIN chat.webhook_events e USING (event_id)
	WHERE e.chat_id = :xc AND d.endpoint_id = :xe), 1::bigint, 'with its delivery');
SELECT is(pg_temp.remote('a', format($$SELECT chat.mark_read(41002, %s, 3) ->> 'read_seq'$$, :xc)), '3', 'a marks read');
SELECT is(pg_temp.events(:xc), 1::bigint, 'which the endpoint does not take: not recorded');
SELECT is(pg_temp.remote('a', format($$BEGIN; SELECT chat.send_message(41001, %s, 'in flight') ->> 'seq'$$, :xc)), '4',
	'a sends in a transaction it keeps open');
SELECT is(dblink_send_query('b', format('SELECT chat.remove_webhook(%s)', :xe)), 1, 'b removes the endpoint meanwhile');
SELECT pg_sleep(0.3);
SELECT is(dblink_is_busy('b'), 1, 'and waits for a''s transaction');
SELECT pg_temp.remote('c', $$SELECT chat.open_chat(41003, 'direct', NULL, 41004)::text$$)::bigint AS yc \gset
SELECT is(pg_temp.remote('c', format($$SET statement_timeout = '3s'; SELECT chat.send_message(41003, %s, 'not held up') ->> 'seq'$$, :yc)), '1',
	'without holding up another session''s send (it does not sit in the lock queue)');
SELECT is(pg_temp.events(:yc), 1::bigint, '(which records an event for the endpoint)');
SELECT is(pg_temp.remote('a', 'COMMIT; SELECT 1::text'), '1', 'a commits');
SELECT is((SELECT count(*) FROM dblink_get_result('b') AS r(x text)), 1::bigint, 'b''s remove_webhook then returns');
SELECT is((SELECT count(*) FROM dblink_get_result('b') AS r(x text)), 0::bigint, '(and is done)');
SELECT is(pg_temp.events(:xc) + pg_temp.events(:yc), 0::bigint, 'its events go with it, the one a recorded in flight too');
SELECT is(pg_temp.remote('a', format($$SELECT chat.send_message(41001, %s, 'four') ->> 'seq'$$, :xc)), '5', 'a sends again');
SELECT is(pg_temp.events(:xc), 0::bigint, 'nothing is recorded any more');
SELECT is(pg_temp.remote('a', format($$BEGIN; SELECT pg_temp.scans_before(); SELECT chat.send_message(41002, %s, 'five');
		SELECT pg_temp.scans_since()$$, :xc)), '0', 'and a knows it without a query');
SELECT is(pg_temp.remote('a', 'COMMIT; SELECT 1::text'), '1', '(committed)');
SELECT lives_ok($$SELECT pg_temp.remote('b', $r$
		DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 41000 AND 41099);
		DELETE FROM chat.chats WHERE user_a BETWEEN 41000 AND 41099;
		DELETE FROM chat.blocks WHERE blocker_id BETWEEN 41000 AND 41099;
		DELETE FROM chat.contacts WHERE user_id BETWEEN 41000 AND 41099$r$)$$,
	'the committed rows are deleted');
SELECT dblink_disconnect('a');
SELECT dblink_disconnect('b');
SELECT dblink_disconnect('c');

-- Roles and privileges.
SELECT has_role('chat_notify', 'the role chat_notify exists');
SELECT ok(NOT (SELECT rolcanlogin OR rolsuper FROM pg_roles WHERE rolname = 'chat_notify'), 'chat_notify cannot log in and is no superuser');
SELECT ok(pg_has_role('chat_notify', 'chat_event_reader', 'MEMBER') AND NOT pg_has_role('chat_notify', 'chat_app', 'MEMBER'),
	'chat_notify is a chat_event_reader, not chat_app');
CREATE TEMP TABLE operator_fns (sig regprocedure PRIMARY KEY);
INSERT INTO operator_fns VALUES ('chat.add_webhook(text, text, text[])'), ('chat.remove_webhook(bigint)'),
	('chat.rotate_webhook_secret(bigint, text)'), ('chat.expire_webhook_secrets(bigint)'),
	('chat.enable_webhook(bigint)'), ('chat.webhooks()'), ('chat.webhooks_changed()');
CREATE TEMP TABLE daemon_fns (sig regprocedure PRIMARY KEY);
INSERT INTO daemon_fns VALUES ('chat.webhook_claim(text, int, int, int)'), ('chat.webhook_result(bigint, bigint, int, text)'),
	('chat.webhook_backlog()'),
	-- email digests (sql/notify_email.sql, 420_email_due.sql)
	('chat.email_claim(text, int, int, int)'), ('chat.email_result(text, bigint, jsonb, bool, text)'),
	('chat.email_backlog()'),
	-- push (sql/notify_push.sql, 430_push.sql)
	('chat.push_claim(text, int, int, int, text[])'), ('chat.push_result(text, bigint, int, text, boolean, int)'),
	('chat.push_backlog()');
SELECT is_empty($$SELECT r, sig FROM unnest(ARRAY['chat_app', 'chat_relay', 'chat_notify', 'chat_event_reader']) r,
	operator_fns WHERE has_function_privilege(r, sig, 'EXECUTE')$$, 'no chat role may call the operator''s webhook functions');
SELECT is_empty($$SELECT r, sig FROM unnest(ARRAY['chat_app', 'chat_relay', 'chat_event_reader']) r,
	daemon_fns WHERE has_function_privilege(r, sig, 'EXECUTE')$$, 'only chat_notify may call the daemon''s');
SELECT ok((SELECT bool_and(has_function_privilege('chat_notify', sig, 'EXECUTE')) FROM daemon_fns), 'chat_notify may call them');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'chat'::regnamespace
	AND has_function_privilege('chat_notify', p.oid, 'EXECUTE')
	AND p.oid NOT IN (SELECT sig FROM daemon_fns)
	AND p.oid NOT IN ('chat.event_keyring()'::regprocedure, 'chat.event_message(bigint, bigint, bigint[])'::regprocedure)$$,
	'chat_notify may call nothing else (but what chat_event_reader may)');
SELECT is_empty($$SELECT r, t, p FROM unnest(ARRAY['chat_app', 'chat_relay', 'chat_notify', 'chat_event_reader']) r,
	unnest(ARRAY['chat.webhooks', 'chat.webhook_events', 'chat.webhook_deliveries', 'chat.devices', 'chat.notify_prefs']) t,
	unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p WHERE has_table_privilege(r, t, p)$$,
	'no chat role has a privilege on the notification tables');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p JOIN daemon_fns d ON d.sig = p.oid
	WHERE NOT p.prosecdef OR NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')$$,
	'the daemon''s functions are SECURITY DEFINER with a pinned search_path');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.oid IN ('chat.add_webhook(text, text, text[])'::regprocedure, 'chat.rotate_webhook_secret(bigint, text)'::regprocedure)
	AND NOT 'log_min_error_statement=panic' = ANY (p.proconfig)$$,
	'a failed call of the functions that take a secret is not logged with its statement');
SET LOCAL ROLE chat_app;
SELECT throws_ok($$SELECT chat.add_webhook('https://t410.example/x', 'whsec_x')$$, '42501', NULL, 'as chat_app, add_webhook fails with 42501');
SELECT throws_ok('SELECT * FROM chat.webhook_claim(''w'', 1, 1, 1)', '42501', NULL, 'as chat_app, webhook_claim fails with 42501');
SELECT throws_ok('SELECT * FROM chat.webhooks', '42501', NULL, 'as chat_app, chat.webhooks cannot be read');
RESET ROLE;
SET LOCAL ROLE chat_notify;
SELECT lives_ok('SELECT * FROM chat.webhook_claim(''w'', 1, 1, 1)', 'as chat_notify, webhook_claim works');
SELECT lives_ok('SELECT * FROM chat.webhook_backlog()', 'and webhook_backlog');
SELECT throws_ok('SELECT * FROM chat.webhook_deliveries', '42501', NULL, 'but chat.webhook_deliveries cannot be read');
SELECT throws_ok('SELECT * FROM chat.webhooks()', '42501', NULL, 'nor the endpoints through webhooks()');
RESET ROLE;

-- add_webhook's refusals.
SELECT pg_temp.secret(32) AS s32 \gset
SELECT is(pg_temp.outcome(format('SELECT chat.add_webhook(NULL, %L)', :'s32')), '22023: url must not be null', 'NULL url');
SELECT is(pg_temp.outcome($$SELECT chat.add_webhook('https://t410.example/', NULL)$$), '22023: secret must not be null', 'NULL secret');
SELECT is(pg_temp.add('ftp://t410.example/', :'s32', 'NULL'), '22023: url must be an http:// or https:// URL', 'ftp://');
SELECT is(pg_temp.add('t410.example/hook', :'s32', 'NULL'), '22023: url must be an http:// or https:// URL', 'no scheme');
SELECT is(pg_temp.add('https://', :'s32', 'NULL'), '22023: url must be an http:// or https:// URL with a host', 'no host');
SELECT is(pg_temp.add('https://t410.example:0/', :'s32', 'NULL'),
	'22023: url must be an http:// or https:// URL with a port from 1 to 65535', 'port 0');
SELECT is(pg_temp.add('https://t410.example:80a/', :'s32', 'NULL'),
	'22023: url must be an http:// or https:// URL with a host and an optional port', 'a bad port');
SELECT is(pg_temp.add('https://t4$10.example/', :'s32', 'NULL'), '22023: url must be an http:// or https:// URL with a host',
	'a bad host name');
SELECT is(pg_temp.add('https://user:pw@t410.example/', :'s32', 'NULL'), '22023: url must not carry a user name or password',
	'credentials in the URL');
SELECT is(pg_temp.add('https://t410.example/a b', :'s32', 'NULL'), '22023: url must be printable ASCII without spaces', 'a space');
SELECT is(pg_temp.add('https://t410.example/' || repeat('x', 2029), :'s32', 'NULL'),
	'22023: url is 2050 bytes long, the limit is 2048', 'over 2,048 bytes');
SELECT is(pg_temp.add('whsec_xyz', :'s32', 'NULL'), '22023: url must be an http:// or https:// URL', 'a secret in the url''s place');
SELECT is(pg_temp.add('https://t410.example/', 'abc', 'NULL'),
	'22023: secret must be "whsec_" and the base64 of 24 to 64 random bytes', 'a secret without whsec_');
SELECT is(pg_temp.add('https://t410.example/', pg_temp.secret(23), 'NULL'),
	'22023: secret must be "whsec_" and the base64 of 24 to 64 random bytes', '23 bytes');
SELECT is(pg_temp.add('https://t410.example/', pg_temp.secret(65), 'NULL'),
	'22023: secret must be "whsec_" and the base64 of 24 to 64 random bytes', '65 bytes');
SELECT is(pg_temp.add('https://t410.example/', 'whsec_' || repeat('*', 32), 'NULL'),
	'22023: secret must be "whsec_" and the base64 of 24 to 64 random bytes', 'not base64');
SELECT is(pg_temp.add('https://t410.example/', 'whsec_' || translate(substr(:'s32', 7), '+/', '-_'), 'NULL'), 'ok',
	'(the test secret has no + or /)');
SELECT is(pg_temp.add('https://t410.example/', 'whsec_' || replace(encode(decode(repeat('fb', 30), 'hex'), 'base64'), E'\n', ''), 'NULL'), 'ok',
	'standard base64 with + and / is accepted');
SELECT is(pg_temp.add('https://t410.example/', 'whsec_' || translate(replace(encode(decode(repeat('fb', 30), 'hex'), 'base64'), E'\n', ''), '+/', '-_'), 'NULL'),
	'22023: secret must be "whsec_" and the base64 of 24 to 64 random bytes', 'base64url is not');
SELECT is(pg_temp.add('https://t410.example/', pg_temp.secret(24), 'NULL'), 'ok', '24 bytes are accepted');
SELECT is(pg_temp.add('https://t410.example/', pg_temp.secret(64), 'NULL'), 'ok', '64 bytes are accepted');
SELECT is(pg_temp.add('http://[::1]:8080/hook', :'s32', 'NULL'), 'ok', 'an IPv6 address with a port is accepted');
SELECT is(pg_temp.add('https://t410.example/', :'s32', 'ARRAY[]::text[]'),
	'22023: event_types must name at least one type, or be NULL for every type', 'no event type');
SELECT is(pg_temp.add('https://t410.example/', :'s32', 'ARRAY[''message'', NULL]'), '22023: event_types must not contain NULL',
	'a NULL event type');
SELECT is(pg_temp.add('https://t410.example/', :'s32', 'ARRAY[''message'', ''typing'']'), '22023: unknown event type "typing"',
	'an unknown event type');
SELECT is(pg_temp.outcome('SELECT chat.remove_webhook(NULL)'), '22023: endpoint_id must not be null', 'remove: NULL');
SELECT is(pg_temp.outcome('SELECT chat.remove_webhook(-1)'), '22023: webhook endpoint -1 does not exist', 'remove: a missing endpoint');
SELECT is(pg_temp.outcome('SELECT chat.enable_webhook(-1)'), '22023: webhook endpoint -1 does not exist', 'enable: a missing endpoint');
SELECT is(pg_temp.outcome('SELECT chat.expire_webhook_secrets(-1)'), '22023: webhook endpoint -1 does not exist', 'expire: a missing endpoint');
SELECT is(pg_temp.outcome(format('SELECT chat.rotate_webhook_secret(-1, %L)', :'s32')), '22023: webhook endpoint -1 does not exist',
	'rotate: a missing endpoint');
DELETE FROM chat.webhooks;

-- Endpoints, secrets and what webhooks() shows.
SELECT chat.add_webhook('https://t410.example/all', pg_temp.secret(32, '11')) AS e_all \gset
SELECT chat.add_webhook('http://t410.example:8080/some', pg_temp.secret(32, '22'), ARRAY['read', 'message', 'read']) AS e_some \gset
SELECT is((SELECT event_types FROM chat.webhooks WHERE endpoint_id = :e_some), ARRAY['message', 'read'],
	'event types are kept once each, in the documented order');
SELECT is((SELECT w - 'created_at' FROM chat.webhooks() w WHERE (w ->> 'endpoint_id')::bigint = :e_some),
	jsonb_build_object('endpoint_id', :e_some, 'url', 'http://t410.example:8080/some', 'event_types', ARRAY['message', 'read'],
		'enabled', true, 'disabled_reason', NULL, 'failing_since', NULL, 'pending', 0, 'secrets', 1, 'dropped', 0),
	'webhooks() describes an endpoint');
SELECT is((SELECT w -> 'event_types' FROM chat.webhooks() w WHERE (w ->> 'endpoint_id')::bigint = :e_all), 'null'::jsonb,
	'null event types: every type');
SELECT lives_ok(format('SELECT chat.rotate_webhook_secret(%s, %L)', :e_all, pg_temp.secret(32, '33')), 'rotate a secret');
SELECT is((SELECT secrets FROM chat.webhooks WHERE endpoint_id = :e_all), ARRAY[pg_temp.secret(32, '33'), pg_temp.secret(32, '11')],
	'the new secret first, the previous one kept');
SELECT lives_ok(format('SELECT chat.rotate_webhook_secret(%s, %L)', :e_all, pg_temp.secret(32, '44')), 'rotate again');
SELECT is((SELECT secrets FROM chat.webhooks WHERE endpoint_id = :e_all), ARRAY[pg_temp.secret(32, '44'), pg_temp.secret(32, '33')],
	'two secrets at most: the oldest goes');
SELECT is(pg_temp.outcome(format('SELECT chat.rotate_webhook_secret(%s, %L)', :e_all, pg_temp.secret(32, '44'))),
	'22023: the new secret is the endpoint''s current one', 'the current secret is not a new one');
SELECT is(pg_temp.outcome(format('SELECT chat.rotate_webhook_secret(%s, %L)', :e_all, 'whsec_short')),
	'22023: secret must be "whsec_" and the base64 of 24 to 64 random bytes', 'a bad new secret');
SELECT lives_ok(format('SELECT chat.expire_webhook_secrets(%s)', :e_all), 'expire the previous secret');
SELECT is((SELECT secrets FROM chat.webhooks WHERE endpoint_id = :e_all), ARRAY[pg_temp.secret(32, '44')], 'the newest alone signs');
SELECT is((SELECT count(*) FROM chat.webhooks() w WHERE w::text LIKE '%whsec_%' OR w::text LIKE '%' || substr(pg_temp.secret(32, '44'), 7, 20) || '%'),
	0::bigint, 'webhooks() never shows a secret');

-- Recording: one event per call, a delivery per endpoint taking its type, the body exactly as POSTed.
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.open_chat(41010, 'listing', 4100, 41011) AS c \gset
SELECT is(pg_temp.types_since(:ev0), ARRAY['chat_opened'], 'open_chat creating a chat records chat_opened');
SELECT is((SELECT body FROM chat.webhook_events WHERE event_id > :ev0),
	format('{"type":"chat_opened","timestamp":"%s","chat_id":%s,"kind":"listing","context_id":4100,"user_ids":[41010,41011]}',
		(SELECT body::jsonb ->> 'timestamp' FROM chat.webhook_events WHERE event_id > :ev0), :c),
	'its body, byte for byte');
SELECT ok((SELECT body::jsonb ->> 'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$' FROM chat.webhook_events WHERE event_id > :ev0),
	'the timestamp is ISO 8601 in UTC');
SELECT is((SELECT array_agg(endpoint_id) FROM chat.webhook_deliveries WHERE event_id > :ev0), ARRAY[:e_all]::bigint[],
	'delivered to the endpoint of every type only');
SELECT pg_temp.last_event() AS ev0 \gset
SELECT is(chat.open_chat(41010, 'listing', 4100, 41011), :c::bigint, 'opening it again');
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'records nothing');

SELECT chat.send_message(41010, :c, 'hello "webhooks"') AS m \gset
SELECT is(pg_temp.types_since(:ev0), ARRAY['message'], 'send_message records message');
SELECT is((SELECT body FROM chat.webhook_events WHERE event_id > :ev0),
	format('{"type":"message","timestamp":"%s","chat_id":%s,"seq":1,"cursor":1,"sender_id":41010,"message":%s}',
		(SELECT body::jsonb ->> 'timestamp' FROM chat.webhook_events WHERE event_id > :ev0), :c, :'m'),
	'its body, with the message exactly as send_message returned it');
SELECT is((SELECT array_agg(endpoint_id ORDER BY endpoint_id) FROM chat.webhook_deliveries WHERE event_id > :ev0),
	ARRAY[:e_all, :e_some]::bigint[], 'delivered to both endpoints');
SELECT ok((SELECT bool_and(attempts = 0 AND leased_by IS NULL AND next_at <= clock_timestamp()) FROM chat.webhook_deliveries WHERE event_id > :ev0),
	'due at once, not attempted yet');
SELECT ok((SELECT created_at = (body::jsonb ->> 'timestamp')::timestamptz FROM chat.webhook_events WHERE event_id > :ev0),
	'created_at is the body''s timestamp');

SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.mark_read(41011, :c, 1) IS NOT NULL AS r \gset
SELECT is((SELECT body::jsonb - 'timestamp' FROM chat.webhook_events WHERE event_id > :ev0),
	jsonb_build_object('type', 'read', 'chat_id', :c, 'user_id', 41011, 'seq', 1), 'mark_read records read');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries WHERE event_id > :ev0), 2::bigint, 'for both endpoints');
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.mark_read(41011, :c, 1) IS NOT NULL AS r \gset
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'a mark_read that moves nothing records nothing');

SELECT chat.edit_message(41010, :c, 1, 'edited') AS m \gset
SELECT is((SELECT body FROM chat.webhook_events WHERE event_id > :ev0),
	format('{"type":"edit","timestamp":"%s","chat_id":%s,"seq":1,"cursor":2,"sender_id":41010,"message":%s}',
		(SELECT body::jsonb ->> 'timestamp' FROM chat.webhook_events WHERE event_id > :ev0), :c, :'m'),
	'edit_message records edit, with the edited message');
SELECT is((SELECT array_agg(endpoint_id) FROM chat.webhook_deliveries WHERE event_id > :ev0), ARRAY[:e_all]::bigint[],
	'for the endpoint that takes it only');
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.delete_message(41010, :c, 1) AS m \gset
SELECT is((SELECT body FROM chat.webhook_events WHERE event_id > :ev0),
	format('{"type":"delete","timestamp":"%s","chat_id":%s,"seq":1,"cursor":3,"sender_id":41010,"message":%s}',
		(SELECT body::jsonb ->> 'timestamp' FROM chat.webhook_events WHERE event_id > :ev0), :c, :'m'),
	'delete_message records delete');
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.delete_message(41010, :c, 1) IS NOT NULL AS d \gset
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'deleting again records nothing');

SELECT chat.block_user(41011, 41010) IS NULL AS b \gset
SELECT is((SELECT body FROM chat.webhook_events WHERE event_id > :ev0),
	format('{"type":"blocked","timestamp":"%s","user_id":41011,"other_id":41010}',
		(SELECT body::jsonb ->> 'timestamp' FROM chat.webhook_events WHERE event_id > :ev0)),
	'block_user records blocked');
SELECT is((SELECT chat_id FROM chat.webhook_events WHERE event_id > :ev0), NULL::bigint, 'with no chat');
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.block_user(41011, 41010) IS NULL AS b \gset
SELECT chat.unblock_user(41011, 41010) IS NULL AS b \gset
SELECT chat.typing(41010, :c) IS NULL AS t \gset
SELECT chat.set_muted(41010, :c, true) IS NULL AS t \gset
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'blocking again, unblocking, typing and muting record nothing');

-- A retried send (same client_id) records nothing; a rolled-back one neither.
SELECT chat.send_message(41010, :c, 'once', 'a4100000-0000-4000-8000-000000000001') IS NOT NULL AS s \gset
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.send_message(41010, :c, 'once', 'a4100000-0000-4000-8000-000000000001') IS NOT NULL AS s \gset
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'a retried send records nothing');
SAVEPOINT before_send;
SELECT chat.send_message(41010, :c, 'rolled back') IS NOT NULL AS s \gset
SELECT is(pg_temp.types_since(:ev0), ARRAY['message'], '(a send in a savepoint records)');
ROLLBACK TO SAVEPOINT before_send;
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'rolled back, nothing is left of it');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries WHERE event_id > :ev0), 0::bigint, 'not even a delivery');
SELECT is(pg_temp.outcome(format($$SELECT chat.send_message(41099, %s, 'not a member')$$, :c)), '42501: chat not found or access denied',
	'a refused send');
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'records nothing');

-- Removing an endpoint: its deliveries, and the events only it waited for.
SELECT chat.send_message(41011, :c, 'to both') IS NOT NULL AS s \gset
SELECT chat.edit_message(41011, :c, 3, 'to all only') IS NOT NULL AS s \gset
SELECT lives_ok(format('SELECT chat.remove_webhook(%s)', :e_all), 'remove the endpoint of every type');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries WHERE endpoint_id = :e_all), 0::bigint, 'its deliveries are gone');
SELECT is(pg_temp.types_since(:ev0), ARRAY['message'], 'and the events no other endpoint waits for');
SELECT is((SELECT (w ->> 'pending')::int FROM chat.webhooks() w), 4, 'webhooks() counts what the other endpoint waits for');
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.edit_message(41011, :c, 3, 'no taker') IS NOT NULL AS s \gset
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'an edit no endpoint takes any more records nothing');
SELECT chat.send_message(41011, :c, 'still taken') IS NOT NULL AS s \gset
SELECT is(pg_temp.types_since(:ev0), ARRAY['message'], 'a message still does');

-- The cache in this backend: no endpoint, no query; an endpoint added in
-- this transaction is seen at once.
SELECT lives_ok(format('SELECT chat.remove_webhook(%s)', :e_some), 'remove the other endpoint');
SELECT chat.send_message(41011, :c, 'fills the cache') IS NOT NULL AS s \gset
SELECT pg_temp.webhook_scans() AS scans \gset
SELECT pg_temp.last_event() AS ev0 \gset
SELECT chat.send_message(41011, :c, 'no endpoint') IS NOT NULL AS s \gset
SELECT chat.mark_read(41010, :c, 100) IS NOT NULL AS s \gset
SELECT chat.open_chat(41012, 'direct', NULL, 41013) IS NOT NULL AS s \gset
SELECT chat.block_user(41012, 41013) IS NULL AS s \gset
SELECT is(pg_temp.webhook_scans(), :scans::bigint, 'with no endpoint, sending, reading, opening and blocking do not query chat.webhooks');
SELECT is(pg_temp.types_since(:ev0), '{}'::text[], 'and record nothing');
SELECT chat.add_webhook('https://t410.example/again', :'s32', ARRAY['message']) AS e3 \gset
SELECT chat.send_message(41011, :c, 'seen at once') IS NOT NULL AS s \gset
SELECT is(pg_temp.types_since(:ev0), ARRAY['message'], 'an endpoint added in the same transaction takes the next message');

SELECT * FROM finish();
ROLLBACK;
