-- Privileges: the application role chat_app may execute the API and nothing
-- else in schema chat, and has no privilege on any table or sequence; the
-- API functions are SECURITY DEFINER with a pinned search_path, so they
-- work for chat_app. Users 12000..12099.
BEGIN;
\ir _helpers.psql
SELECT plan(49);

-- The API (contract, plus set_muted, presence, attachments, devices and
-- notification preferences).
CREATE TEMP TABLE api (sig regprocedure PRIMARY KEY);
INSERT INTO api VALUES
	('chat.open_chat(bigint, text, bigint, bigint)'),
	('chat.send_message(bigint, bigint, text, uuid, bigint[])'),
	('chat.edit_message(bigint, bigint, bigint, text)'),
	('chat.delete_message(bigint, bigint, bigint)'),
	('chat.history(bigint, bigint, bigint, int)'),
	('chat.catch_up(bigint, bigint, bigint, int)'),
	('chat.list_chats(bigint, text, int, bool)'),
	('chat.mark_read(bigint, bigint, bigint)'),
	('chat.unread_total(bigint)'),
	('chat.set_archived(bigint, bigint, bool)'),
	('chat.set_muted(bigint, bigint, bool)'),
	('chat.block_user(bigint, bigint)'),
	('chat.unblock_user(bigint, bigint)'),
	('chat.typing(bigint, bigint)'),
	('chat.presence(bigint, bigint[])'),
	('chat.attachment_upload(bigint, bigint, text, text, bigint)'),
	('chat.attachment_url(bigint, bigint, int, bool)'),
	('chat.register_device(bigint, text, jsonb)'),
	('chat.unregister_device(bigint, bigint)'),
	('chat.set_notify_prefs(bigint, jsonb)'),
	('chat.notify_prefs(bigint)');

SELECT has_role('chat_app', 'the role chat_app exists');
SELECT ok(NOT (SELECT rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = 'chat_app'),
	'chat_app is a plain role: no login, superuser, createrole, createdb or bypassrls');
SELECT ok(has_schema_privilege('chat_app', 'chat', 'USAGE'), 'chat_app may use schema chat');
SELECT ok(NOT has_schema_privilege('chat_app', 'chat', 'CREATE'), 'chat_app may not create in schema chat');

-- No table privilege at all, on any table, partition or sequence of schema chat.
SELECT cmp_ok((SELECT count(*) FROM pg_class WHERE relnamespace = 'chat'::regnamespace AND relkind IN ('r', 'p')), '>=', 9::bigint,
	'(schema chat has its tables and partitions)');
SELECT is_empty($$
	SELECT c.oid::regclass, p.priv
	FROM (SELECT oid FROM pg_class WHERE relnamespace = 'chat'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'f') OFFSET 0) c,
		unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
	WHERE has_table_privilege('chat_app', c.oid, p.priv)$$,
	'chat_app has no SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER on any table in schema chat');
SELECT is_empty($$
	SELECT c.oid::regclass, c.attname FROM (SELECT c.oid, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE c.relnamespace = 'chat'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped OFFSET 0) c
	WHERE has_column_privilege('chat_app', c.oid, c.attname, 'SELECT, INSERT, UPDATE, REFERENCES')$$,
	'chat_app has no column privilege either');
SELECT is_empty($$
	SELECT s.oid::regclass FROM (SELECT oid FROM pg_class WHERE relnamespace = 'chat'::regnamespace AND relkind = 'S' OFFSET 0) s
	WHERE has_sequence_privilege('chat_app', s.oid, 'USAGE, SELECT, UPDATE')$$,
	'chat_app has no privilege on the sequences of schema chat');
SELECT ok(NOT has_table_privilege('chat_app', 'chat.messages', 'SELECT'), 'no SELECT on chat.messages');
SELECT ok(NOT has_table_privilege('chat_app', 'chat.chats', 'INSERT'), 'no INSERT on chat.chats');
SELECT ok(NOT has_table_privilege('chat_app', 'chat.members', 'UPDATE'), 'no UPDATE on chat.members');
SELECT ok(NOT has_table_privilege('chat_app', 'chat.blocks', 'DELETE'), 'no DELETE on chat.blocks');

-- EXECUTE on the API, on nothing else in schema chat.
SELECT ok(has_function_privilege('chat_app', sig, 'EXECUTE'), 'chat_app may execute ' || sig::text)
FROM api ORDER BY sig::text;
SELECT is_empty($$
	SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.pronamespace = 'chat'::regnamespace AND p.oid NOT IN (SELECT sig FROM api)
	  AND has_function_privilege('chat_app', p.oid, 'EXECUTE')$$,
	'chat_app may execute nothing in schema chat outside the API');
SELECT is_empty($$
	SELECT sig FROM api JOIN pg_proc p ON p.oid = sig
	WHERE NOT p.prosecdef OR NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')$$,
	'every API function is SECURITY DEFINER with a pinned search_path');

-- PUBLIC gets nothing: a role without chat_app can call no API function.
CREATE ROLE t120_nobody NOLOGIN;
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.pronamespace = 'chat'::regnamespace AND has_function_privilege('t120_nobody', p.oid, 'EXECUTE')$$,
	'a role without chat_app may execute no function of schema chat');
SELECT ok(NOT has_schema_privilege('t120_nobody', 'chat', 'USAGE'), 'nor use schema chat');
SET LOCAL ROLE t120_nobody;
SELECT throws_ok($$SELECT chat.unread_total(1)$$, '42501', NULL, 'as such a role, calling the API fails with 42501');
RESET ROLE;

-- As chat_app: tables are out of reach, the API works.
SET LOCAL ROLE chat_app;
SELECT throws_ok('SELECT * FROM chat.messages', '42501', NULL, 'as chat_app, SELECT on chat.messages fails with 42501');
SELECT throws_ok('SELECT * FROM chat.chats', '42501', NULL, 'as chat_app, SELECT on chat.chats fails with 42501');
SELECT throws_ok($$INSERT INTO chat.blocks (blocker_id, blocked_id) VALUES (1, 2)$$, '42501', NULL,
	'as chat_app, INSERT into chat.blocks fails with 42501');
SELECT throws_ok('UPDATE chat.members SET unread = 0', '42501', NULL, 'as chat_app, UPDATE of chat.members fails with 42501');
SELECT chat.open_chat(12001, 'listing', 1200, 12002) AS c \gset
SELECT is(chat.send_message(12001, :c, 'sent as chat_app') ->> 'seq', '1', 'as chat_app, send_message works');
SELECT is((SELECT m ->> 'body' FROM chat.history(12002, :c) m), 'sent as chat_app', 'as chat_app, history works');
SELECT is((SELECT r ->> 'unread' FROM chat.list_chats(12002) r), '1', 'as chat_app, list_chats works');
RESET ROLE;
SELECT is((SELECT body FROM chat.messages WHERE chat_id = :c), 'sent as chat_app', 'the message sent as chat_app is stored');

-- The relay's presence functions belong to chat_relay (chat_app plus them), not to applications.
SELECT ok(NOT has_function_privilege('chat_app', 'chat.presence_update(text, bigint[], bigint[])', 'EXECUTE')
	AND NOT has_function_privilege('chat_app', 'chat.relay_register(text)', 'EXECUTE'),
	'chat_app may not report presence or register a relay');
SELECT ok(has_function_privilege('chat_relay', 'chat.presence_update(text, bigint[], bigint[])', 'EXECUTE')
	AND has_function_privilege('chat_relay', 'chat.relay_heartbeat(text, int)', 'EXECUTE'),
	'chat_relay may report presence and heartbeats');
SELECT ok(pg_has_role('chat_relay', 'chat_app', 'MEMBER'), 'chat_relay has the whole API through chat_app');

SELECT * FROM finish();
ROLLBACK;
