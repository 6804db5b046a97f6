-- Partition maintenance settings, time zones, refusals and grants.
BEGIN;
SELECT plan(26);

SET TimeZone = 'UTC';
SET chat.premake_months = 0;
SELECT is(jsonb_array_length(chat.maintain(now() + interval '5 months')->'created'), 1,
	'premake_months = 0: only the month of at');
SET chat.premake_months = 6;
SELECT is(jsonb_array_length(chat.maintain(now() + interval '5 months')->'created'), 6,
	'premake_months = 6: six more months');
SELECT is((chat.maintain(now() + interval '5 months')->>'premake_months')::int, 6, 'the report names the setting used');
RESET chat.premake_months;

SET TimeZone = 'Asia/Tokyo';
SELECT is(chat.maintain(now() + interval '20 months')->'created'->>0,
	'chat.messages_' || to_char((now() + interval '20 months') AT TIME ZONE 'UTC', 'YYYY_MM'),
	'partitions are named by UTC month whatever the session time zone');
SELECT is((SELECT max(range_from) FROM chat.partitions()),
	date_trunc('month', now() + interval '20 months', 'UTC') + interval '3 months',
	'the bounds are UTC month starts');
SET TimeZone = 'UTC';

SELECT throws_ok($$SELECT chat.maintain(NULL)$$, '22023', 'at must not be null', 'at NULL is refused');
SELECT throws_ok($$SELECT chat.maintain('infinity')$$, '22023', 'at must be a finite time within 200 years of now',
	'an infinite at is refused');
SELECT throws_ok($$SELECT chat.maintain(now() + interval '300 years')$$, '22023', NULL, 'a far away at is refused');
SELECT throws_ok($$SET chat.retention_action = 'purge'$$, '22023', NULL, 'an unknown retention action is refused');
SELECT throws_ok($$SET chat.premake_months = -1$$, '22023', NULL, 'a negative premake is refused');
SELECT throws_ok($$SET chat.retention_months = -1$$, '22023', NULL, 'a negative retention is refused');
SELECT throws_ok($$SET chat.maintenance_interval = 60$$, '55P02', NULL, 'the worker interval is set in the server configuration');
SET chat.archive_schema = 'chat';
SELECT throws_ok($$SELECT chat.maintain()$$, '22023', 'chat.archive_schema must name a schema other than chat',
	'the archive cannot be schema chat');
RESET chat.archive_schema;
SELECT is(current_setting('chat.premake_months'), '3', 'three months ahead by default');
SELECT is(current_setting('chat.retention_months'), '0', 'retention keeps everything by default');
SELECT is(current_setting('chat.retention_action'), 'drop', 'retention drops by default');
SELECT is(current_setting('chat.archive_schema'), 'chat_archive', 'detached months go to chat_archive by default');
SELECT is(current_setting('chat.maintenance_lock_timeout'), '20ms', 'a lock request waits at most 20 ms by default');

-- DBA only.
SELECT ok(NOT has_function_privilege('chat_app', 'chat.maintain(timestamptz)', 'EXECUTE'), 'chat_app cannot maintain');
SELECT ok(NOT has_function_privilege('chat_app', 'chat.partitions()', 'EXECUTE'), 'chat_app cannot list partitions');
SELECT ok(NOT has_function_privilege('chat_app', 'chat.maintain_procedure(timestamptz, jsonb)', 'EXECUTE'),
	'chat_app cannot call the procedure');
SELECT ok(NOT has_function_privilege('public', 'chat.maintain(timestamptz)', 'EXECUTE'), 'PUBLIC cannot maintain');
SET ROLE chat_app;
SELECT throws_ok($$SELECT chat.maintain()$$, '42501', NULL, 'chat_app calling maintain is refused');
SELECT throws_ok($$SELECT * FROM chat.partitions()$$, '42501', NULL, 'chat_app calling partitions is refused');
RESET ROLE;

-- CALL inside a transaction block cannot commit: it runs like the function.
SELECT lives_ok($$CALL chat.maintain_procedure(now() + interval '40 months')$$,
	'CALL maintain_procedure inside a transaction block works');
SELECT ok(EXISTS (SELECT 1 FROM chat.partitions()
				  WHERE partition::text = 'chat.messages_' || to_char((now() + interval '40 months') AT TIME ZONE 'UTC', 'YYYY_MM')),
	'and made the month');

SELECT * FROM finish();
ROLLBACK;
