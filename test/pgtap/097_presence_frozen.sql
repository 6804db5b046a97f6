-- Frozen relays: relay_register records its LISTEN backend (listen_pid,
-- registered_at); relay_heartbeat records the caller's grace (grace_s); the
-- sweep terminates the LISTEN backend of a relay silent past both graces
-- whose session still holds its lock, and clears it, but never a backend
-- that is not the one that registered (pid reuse: started after the
-- registration; another database), nor a relay still within its own grace.
-- Only chat_relay may call the sweep.
-- dblink connections: 'sender' (the sweeper, relay tap-fz-s), 'frozen' and
-- 'other' (two relays' LISTEN sessions), 'otherdb' (database postgres).
-- Users 9610..9619, relays tap-fz-*; committed rows deleted at the end.
BEGIN;
\ir _helpers.psql
SELECT plan(33);

CREATE FUNCTION pg_temp.on(conn text, sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink(conn, sql) AS t(r text) $$;

-- Is pid a backend now (a fresh statistics snapshot)?
CREATE FUNCTION pg_temp.alive(p int) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_stat_clear_snapshot();
	RETURN EXISTS (SELECT FROM pg_stat_activity WHERE pid = p);
END
$$;

-- The sweeper's heartbeat (grace 2 s): the number of relays cleared. Its
-- effects are checked in the next statement (a statement's snapshot is
-- taken before its dblink call commits).
CREATE FUNCTION pg_temp.sweep() RETURNS int
LANGUAGE sql AS $$ SELECT pg_temp.on('sender', $q$SELECT chat.relay_heartbeat('tap-fz-s', 2)::text$q$)::int $$;

-- Make a relay silent for an hour (committed).
CREATE FUNCTION pg_temp.silence(relay text) RETURNS text
LANGUAGE sql AS $$
	SELECT pg_temp.on('sender', format($q$UPDATE chat.relays SET heartbeat_at = now() - interval '1 hour'
		WHERE relay_id = %L RETURNING 'ok'$q$, relay))
$$;

SELECT has_column('chat', 'relays', 'listen_pid', 'chat.relays has listen_pid');
SELECT has_column('chat', 'relays', 'registered_at', 'chat.relays has registered_at');
SELECT has_column('chat', 'relays', 'grace_s', 'chat.relays has grace_s');

SELECT is(dblink_connect('sender', pg_temp.connstr()), 'OK', 'sender connected');
SELECT is(dblink_connect('frozen', pg_temp.connstr()), 'OK', 'frozen connected');
SELECT is(dblink_connect('other', pg_temp.connstr()), 'OK', 'other connected');
SELECT is(dblink_connect('otherdb', regexp_replace(pg_temp.connstr(), 'dbname=\S+', 'dbname=postgres')), 'OK',
	'otherdb connected (database postgres)');
SELECT pg_temp.on('frozen', 'SELECT pg_backend_pid()::text')::int AS frozen_pid,
	pg_temp.on('other', 'SELECT pg_backend_pid()::text')::int AS other_pid,
	pg_temp.on('otherdb', 'SELECT pg_backend_pid()::text')::int AS otherdb_pid \gset
SELECT lives_ok($$SELECT pg_temp.on('sender', $r$
		DELETE FROM chat.presence WHERE relay_id LIKE 'tap-fz-%' RETURNING 'x';
		DELETE FROM chat.relays WHERE relay_id LIKE 'tap-fz-%' RETURNING 'x'$r$)$$,
	'no leftovers of an earlier run');

-- Registering records the LISTEN backend; a heartbeat, the caller's grace.
SELECT is(pg_temp.on('frozen', $$SELECT chat.relay_register('tap-fz-a')::text$$), 'true', 'tap-fz-a registers');
SELECT is((SELECT listen_pid FROM chat.relays WHERE relay_id = 'tap-fz-a'), :frozen_pid, 'its listen_pid is the registering backend');
SELECT ok((SELECT r.registered_at > a.backend_start FROM chat.relays r JOIN pg_stat_activity a ON a.pid = r.listen_pid
	WHERE r.relay_id = 'tap-fz-a'), 'registered after that backend started');
SELECT is(pg_temp.on('frozen', $$SELECT chat.relay_heartbeat('tap-fz-a', 2)::text$$), '0', 'tap-fz-a heartbeats (grace 2 s)');
SELECT is((SELECT grace_s FROM chat.relays WHERE relay_id = 'tap-fz-a'), 2, 'its grace_s is recorded');
SELECT lives_ok($$SELECT pg_temp.on('frozen', $r$SELECT chat.presence_update('tap-fz-a', '{9610,9611}', NULL)::text$r$)$$,
	'9610 and 9611 are online on tap-fz-a');

-- Within the grace nothing happens; past it, its live session is cut.
SELECT pg_temp.sweep() >= 0 AS swept \gset
SELECT ok(:'swept'::bool AND pg_temp.alive(:frozen_pid)
	AND EXISTS (SELECT FROM chat.relays WHERE relay_id = 'tap-fz-a'), 'a sweep within the grace leaves it');
SELECT is(pg_temp.silence('tap-fz-a'), 'ok', 'tap-fz-a has been silent for an hour, its session alive (frozen)');
SELECT cmp_ok(pg_temp.sweep(), '>=', 1, 'the sweep clears it');
SELECT ok(NOT pg_temp.alive(:frozen_pid), 'its LISTEN backend is terminated');
SELECT is((SELECT count(*) FROM chat.relays WHERE relay_id = 'tap-fz-a'), 0::bigint, 'the relay is forgotten');
SELECT is((SELECT count(*) FROM chat.presence WHERE relay_id = 'tap-fz-a'), 0::bigint, 'its users are offline');
SELECT isnt((pg_temp.try($$SELECT pg_temp.on('frozen', 'SELECT 1::text')$$)).state, '00000',
	'the frozen session finds its connection gone');

-- Never a backend that is not the registered one.
SELECT is(pg_temp.on('other', $$SELECT chat.relay_register('tap-fz-b')::text$$), 'true', 'tap-fz-b registers');
SELECT is(pg_temp.on('sender', format($q$UPDATE chat.relays SET registered_at = a.backend_start - interval '1 s'
		FROM pg_stat_activity a WHERE a.pid = %s AND relay_id = 'tap-fz-b' RETURNING 'ok'$q$, :other_pid))
	|| pg_temp.silence('tap-fz-b'), 'okok', 'tap-fz-b is silent and registered before its backend started (a reused pid)');
SELECT pg_temp.sweep() >= 0 AS swept \gset
SELECT ok(:'swept'::bool AND pg_temp.alive(:other_pid)
	AND EXISTS (SELECT FROM chat.relays WHERE relay_id = 'tap-fz-b'), 'that backend is left alone, the relay too');
SELECT is(pg_temp.on('sender', format($q$UPDATE chat.relays SET listen_pid = %s, registered_at = now() + interval '1 hour'
		WHERE relay_id = 'tap-fz-b' RETURNING 'ok'$q$, :otherdb_pid)), 'ok', 'tap-fz-b names a backend of another database');
SELECT pg_temp.sweep() >= 0 AS swept \gset
SELECT ok(:'swept'::bool AND pg_temp.alive(:otherdb_pid)
	AND EXISTS (SELECT FROM chat.relays WHERE relay_id = 'tap-fz-b'), 'which is left alone');

-- Not within the silent relay's own grace, even past the sweeper's.
SELECT is(pg_temp.on('sender', format($q$UPDATE chat.relays SET listen_pid = %s, registered_at = now(), grace_s = 7200
		WHERE relay_id = 'tap-fz-b' RETURNING 'ok'$q$, :other_pid)), 'ok',
	'tap-fz-b names its own backend again, and its own grace is two hours');
SELECT pg_temp.sweep() >= 0 AS swept \gset
SELECT ok(:'swept'::bool AND pg_temp.alive(:other_pid)
	AND EXISTS (SELECT FROM chat.relays WHERE relay_id = 'tap-fz-b'), 'silent for an hour, it is left alone');
SELECT is(pg_temp.on('sender', $q$UPDATE chat.relays SET grace_s = 2 WHERE relay_id = 'tap-fz-b' RETURNING 'ok'$q$), 'ok',
	'with a grace of 2 s (the check above failed for the right reason)');
SELECT pg_temp.sweep() >= 1 AS swept \gset
SELECT ok(:'swept'::bool AND NOT pg_temp.alive(:other_pid)
	AND NOT EXISTS (SELECT FROM chat.relays WHERE relay_id = 'tap-fz-b'), 'it is cut off and cleared');

-- Only the relay role may sweep; the sweep runs as the extension's owner.
SELECT ok(NOT has_function_privilege('chat_app', 'chat.relay_heartbeat(text, int)', 'EXECUTE')
	AND has_function_privilege('chat_relay', 'chat.relay_heartbeat(text, int)', 'EXECUTE'),
	'chat_app may not call relay_heartbeat; chat_relay may');
SELECT ok((SELECT p.prosecdef AND (r.rolsuper OR (pg_has_role(r.oid, 'pg_signal_backend', 'USAGE')
		AND pg_has_role(r.oid, 'pg_read_all_stats', 'USAGE')))
	FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = 'chat.relay_heartbeat(text, int)'::regprocedure),
	'relay_heartbeat is SECURITY DEFINER, owned by a role that may terminate backends');

-- Clean up what was committed.
SELECT lives_ok($$SELECT pg_temp.on('sender', $r$
		DELETE FROM chat.presence WHERE relay_id LIKE 'tap-fz-%' RETURNING 'x';
		DELETE FROM chat.relays WHERE relay_id LIKE 'tap-fz-%' RETURNING 'x'$r$)$$, 'clean up');
SELECT dblink_disconnect('frozen'), dblink_disconnect('otherdb'), dblink_disconnect('sender') \g /dev/null

SELECT * FROM finish();
ROLLBACK;
