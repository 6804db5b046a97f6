-- Monthly partitions of chat.messages: a recent history page touches only
-- the newest partition (plus the default one), older pages only the
-- partitions down to the page; history, catch_up, edit, delete and
-- idempotent sends work across partitions, rows in chat.messages_default
-- are merged in seq order; partitions attached or detached later, by this
-- session or another, are picked up. Users 11000..11099.
--
-- The data must be committed before the test transaction starts, or the
-- inserts' own locks would hide what history locks; so the set-up below
-- runs (and commits) before BEGIN, and is removed after ROLLBACK.
--
-- Chat 11000/11001, opened 24 months ago, 40 messages:
--   seq  1..10  24 months ago, partition A (created here)
--   seq 11..20  23 months ago, partition B (created here)
--   seq 21..30  12 months ago, no partition: chat.messages_default
--   seq 31..40  now, sent by send_message: the current month's partition
-- Odd seqs are 11000's, even ones 11001's. Message 5 (partition A) was
-- sent with a client_id.
DO $setup$
DECLARE
	cur timestamptz := date_trunc('month', now());
	ma timestamptz := cur - interval '24 months';
	mb timestamptz := cur - interval '23 months';
	md timestamptz := cur - interval '12 months';
	c bigint;
BEGIN
	-- leftovers of an interrupted earlier run
	DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 11000 AND 11099);
	DELETE FROM chat.chats WHERE user_a BETWEEN 11000 AND 11099;
	IF to_regclass('chat.messages_' || to_char(ma, 'YYYY_MM')) IS NOT NULL THEN
		EXECUTE format('DROP TABLE chat.%I', 'messages_' || to_char(ma, 'YYYY_MM'));
	END IF;
	IF to_regclass('chat.messages_' || to_char(mb, 'YYYY_MM')) IS NOT NULL THEN
		EXECUTE format('DROP TABLE chat.%I', 'messages_' || to_char(mb, 'YYYY_MM'));
	END IF;

	EXECUTE format('CREATE TABLE chat.%I PARTITION OF chat.messages FOR VALUES FROM (%L) TO (%L)',
		'messages_' || to_char(ma, 'YYYY_MM'), ma, ma + interval '1 month');
	EXECUTE format('CREATE TABLE chat.%I PARTITION OF chat.messages FOR VALUES FROM (%L) TO (%L)',
		'messages_' || to_char(mb, 'YYYY_MM'), mb, mb + interval '1 month');

	c := chat.open_chat(11000, 'direct', NULL, 11001);
	UPDATE chat.chats SET created_at = ma WHERE chat_id = c;
	UPDATE chat.members SET sort_at = ma WHERE chat_id = c;
	INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, client_id, created_at)
	SELECT c, s, s, CASE WHEN s % 2 = 1 THEN 11000 ELSE 11001 END, 'old #' || s,
		CASE s WHEN 5 THEN 'e5eebc99-9c0b-4ef8-bb6d-6bb9bd380a05'::uuid END,
		CASE WHEN s <= 10 THEN ma WHEN s <= 20 THEN mb ELSE md END + s * interval '1 hour'
	FROM generate_series(1, 30) s;
	UPDATE chat.chats SET last_seq = 30, last_rev = 30, last_message_at = md + interval '30 hours',
		last_sender_id = 11001, last_preview = 'old #30'
	WHERE chat_id = c;
	UPDATE chat.members SET sort_at = md + interval '30 hours' WHERE chat_id = c;
	FOR s IN 31..40 LOOP
		PERFORM chat.send_message(CASE WHEN s % 2 = 1 THEN 11000 ELSE 11001 END, c, 'new #' || s);
	END LOOP;
END
$setup$;

BEGIN;
\ir _helpers.psql
SELECT plan(42);

SELECT chat_id AS c FROM chat.chats WHERE kind = 'direct' AND user_a = 11000 AND user_b = 11001 \gset
SELECT 'chat.messages_' || to_char(date_trunc('month', now()) - interval '24 months', 'YYYY_MM') AS part_a,
	'chat.messages_' || to_char(date_trunc('month', now()) - interval '23 months', 'YYYY_MM') AS part_b,
	'chat.messages_' || to_char(now(), 'YYYY_MM') AS part_now \gset

-- The partitions of chat.messages that running `sql` locks. It runs in a
-- subtransaction that is then rolled back, which releases its locks, so
-- each call starts from a clean slate.
CREATE FUNCTION pg_temp.partitions_locked_by(sql text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	locked text[];
BEGIN
	BEGIN
		EXECUTE sql;
		SELECT coalesce(array_agg(DISTINCT l.relation::regclass::text ORDER BY l.relation::regclass::text), '{}')
		INTO locked
		FROM pg_locks l JOIN pg_inherits i ON i.inhrelid = l.relation
		WHERE i.inhparent = 'chat.messages'::regclass
		  AND l.pid = pg_backend_pid() AND l.locktype = 'relation';
		RAISE EXCEPTION 'undo' USING ERRCODE = 'ZZ001';
	EXCEPTION WHEN SQLSTATE 'ZZ001' THEN
		NULL;
	END;
	RETURN locked;
END
$$;

-- Is the parent table locked by `sql` (shows the lock check sees locks)?
CREATE FUNCTION pg_temp.parent_locked_by(sql text) RETURNS bool
LANGUAGE plpgsql AS $$
DECLARE
	locked bool;
BEGIN
	BEGIN
		EXECUTE sql;
		locked := EXISTS (SELECT FROM pg_locks WHERE relation = 'chat.messages'::regclass
			AND pid = pg_backend_pid() AND locktype = 'relation');
		RAISE EXCEPTION 'undo' USING ERRCODE = 'ZZ001';
	EXCEPTION WHEN SQLSTATE 'ZZ001' THEN
		NULL;
	END;
	RETURN locked;
END
$$;

-- Locks: a recent page touches only the current month (and the default
-- partition, which may hold any month).
SELECT is(pg_temp.partitions_locked_by(format('SELECT count(*) FROM chat.history(11000, %s, NULL, 5)', :c)),
	ARRAY[:'part_now', 'chat.messages_default'], 'the newest page of 5 locks only the current month and the default partition');
SELECT is(pg_temp.partitions_locked_by(format('SELECT count(*) FROM chat.history(11000, %s, NULL, 10)', :c)),
	ARRAY[:'part_now', 'chat.messages_default'], 'a page of 10 that the current month fills: the same two partitions');
SELECT ok(pg_temp.parent_locked_by(format('SELECT count(*) FROM chat.history(11000, %s, NULL, 5)', :c)),
	'(the lock check sees the parent chat.messages locked)');
SELECT ok(NOT (pg_temp.partitions_locked_by(format('SELECT count(*) FROM chat.history(11000, %s, 16, 5)', :c))
		&& ARRAY[:'part_a']), 'a page inside partition B does not touch the older partition A');
SELECT ok(:'part_b' = ANY (pg_temp.partitions_locked_by(format('SELECT count(*) FROM chat.history(11000, %s, 16, 5)', :c))),
	'(it does read partition B)');
SELECT ok(NOT (pg_temp.partitions_locked_by(format('SELECT count(*) FROM chat.history(11000, %s, 31, 5)', :c))
		&& ARRAY[:'part_a']), 'a page from the default partition does not touch partition A');
SELECT is(pg_temp.partitions_locked_by(format('SELECT count(*) FROM chat.catch_up(11000, %s, 40)', :c)), '{}'::text[],
	'catch_up with nothing new (after the last cursor) touches no partition');

-- Another session detaches partition A and attaches it again; this
-- backend, with its partition list and plans cached, follows. (Reads run in
-- a rolled-back subtransaction, so this session holds no lock the other
-- one's DDL would wait for.)
CREATE FUNCTION pg_temp.seqs_released(call text) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
	out bigint[];
BEGIN
	BEGIN
		out := pg_temp.seqs(call);
		RAISE EXCEPTION 'undo' USING ERRCODE = 'ZZ001';
	EXCEPTION WHEN SQLSTATE 'ZZ001' THEN
		NULL;
	END;
	RETURN out;
END
$$;
SELECT is(dblink_connect('maint', pg_temp.connstr()), 'OK', 'a maintenance session');
SELECT is(dblink_exec('maint', 'SET lock_timeout = ''20s'''), 'SET', '(which gives up rather than wait forever)');
SELECT is(pg_temp.seqs_released(format('chat.history(11000, %s, NULL, 1000)', :c)), ARRAY(SELECT generate_series(40, 1, -1))::bigint[],
	'history: 40..1');
SELECT is(dblink_exec('maint', format('ALTER TABLE chat.messages DETACH PARTITION %s', :'part_a')), 'ALTER TABLE',
	'the other session detaches partition A');
SELECT is(pg_temp.seqs_released(format('chat.history(11000, %s, NULL, 1000)', :c)), ARRAY(SELECT generate_series(40, 11, -1))::bigint[],
	'history no longer returns partition A''s messages');
SELECT is(pg_temp.seqs_released(format('chat.catch_up(11000, %s, 0, 1000)', :c)), ARRAY(SELECT generate_series(11, 40))::bigint[],
	'nor does catch_up');
SELECT is(dblink_exec('maint', format('ALTER TABLE chat.messages ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)', :'part_a',
		date_trunc('month', now()) - interval '24 months', date_trunc('month', now()) - interval '23 months')), 'ALTER TABLE',
	'the other session attaches it again');
SELECT is(pg_temp.seqs_released(format('chat.history(11000, %s, NULL, 1000)', :c)), ARRAY(SELECT generate_series(40, 1, -1))::bigint[],
	'history returns 40..1 again');
SELECT is(dblink_disconnect('maint'), 'OK', 'maintenance session closed');

-- The set-up put the rows where intended. (Querying chat.messages locks
-- every partition until the end of the transaction: only after the lock tests.)
SELECT is(ARRAY(SELECT format('%s %s..%s', tableoid::regclass, min(seq), max(seq)) FROM chat.messages
		WHERE chat_id = :c GROUP BY tableoid ORDER BY min(seq)),
	ARRAY[:'part_a' || ' 1..10', :'part_b' || ' 11..20', 'chat.messages_default 21..30', :'part_now' || ' 31..40'],
	'set-up: 10 messages in each of partitions A, B, default and the current month');

-- history across partitions: right seqs, newest first.
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, NULL, 10)', :c)), ARRAY(SELECT generate_series(40, 31, -1))::bigint[],
	'the newest page: 40..31');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, 36, 10)', :c)), ARRAY(SELECT generate_series(35, 26, -1))::bigint[],
	'a page across the current month and the default partition: 35..26');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, 31, 5)', :c)), ARRAY[30, 29, 28, 27, 26]::bigint[],
	'a page from the default partition: 30..26');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, 25, 10)', :c)), ARRAY(SELECT generate_series(24, 15, -1))::bigint[],
	'a page across the default partition and partition B: 24..15');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, 16, 5)', :c)), ARRAY[15, 14, 13, 12, 11]::bigint[],
	'a page inside partition B: 15..11');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, 13, 5)', :c)), ARRAY[12, 11, 10, 9, 8]::bigint[],
	'a page across partitions B and A: 12..8');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, 4)', :c)), ARRAY[3, 2, 1]::bigint[], 'the oldest page: 3..1');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, NULL, 1000)', :c)), ARRAY(SELECT generate_series(40, 1, -1))::bigint[],
	'one big page: 40..1');
SELECT is((SELECT array_agg(m ->> 'body' ORDER BY o) FROM chat.history(11001, :c, 23, 4) WITH ORDINALITY t(m, o)),
	ARRAY['old #22', 'old #21', 'old #20', 'old #19'], 'the bodies of a page across the default partition and B');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, NULL, 7)', :c)), ARRAY(SELECT generate_series(40, 34, -1))::bigint[],
	'page size 7: 40..34');

-- Walking all pages: every message once, in order, for several page sizes.
CREATE FUNCTION pg_temp.walk_history(c bigint, page int) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
	all_seqs bigint[] := '{}';
	page_seqs bigint[];
	before bigint := NULL;
BEGIN
	FOR i IN 1..1000 LOOP
		page_seqs := pg_temp.seqs(format('chat.history(11000, %s, %s, %s)', c, coalesce(before::text, 'NULL'), page));
		EXIT WHEN cardinality(page_seqs) = 0;
		all_seqs := all_seqs || page_seqs;
		before := page_seqs[cardinality(page_seqs)];
	END LOOP;
	RETURN all_seqs;
END
$$;
SELECT is(pg_temp.walk_history(:c, 7), ARRAY(SELECT generate_series(40, 1, -1))::bigint[], 'walking pages of 7: 40..1');
SELECT is(pg_temp.walk_history(:c, 3), ARRAY(SELECT generate_series(40, 1, -1))::bigint[], 'walking pages of 3: 40..1');
SELECT is(pg_temp.walk_history(:c, 10), ARRAY(SELECT generate_series(40, 1, -1))::bigint[], 'walking pages of 10: 40..1');

-- catch_up across partitions.
SELECT is(pg_temp.seqs(format('chat.catch_up(11000, %s, 0, 1000)', :c)), ARRAY(SELECT generate_series(1, 40))::bigint[],
	'catch_up from 0: 1..40 in order');
SELECT is(pg_temp.seqs(format('chat.catch_up(11000, %s, 18, 5)', :c)), ARRAY[19, 20, 21, 22, 23]::bigint[],
	'catch_up page across partition B and the default partition');

-- Edits and deletes find their message in any partition; catch_up returns them.
SELECT is(chat.edit_message(11000, :c, 3, 'old #3 (edited)') ->> 'cursor', '41', 'edit of a message in partition A');
SELECT is((SELECT tableoid::regclass::text FROM chat.messages WHERE chat_id = :c AND seq = 3), :'part_a',
	'the edited message stays in partition A');
SELECT is(chat.delete_message(11000, :c, 25) ->> 'cursor', '42', 'delete of a message in the default partition');
SELECT is(chat.edit_message(11001, :c, 12, 'old #12 (edited)') ->> 'cursor', '43', 'edit of a message in partition B');
SELECT is((SELECT jsonb_agg(jsonb_build_array(m -> 'seq', m -> 'cursor', m -> 'body', m -> 'deleted') ORDER BY o)
		FROM chat.catch_up(11001, :c, 40) WITH ORDINALITY t(m, o)),
	'[[3, 41, "old #3 (edited)", false], [25, 42, "", true], [12, 43, "old #12 (edited)", false]]'::jsonb,
	'catch_up after 40: the three changes, in cursor order');
SELECT is((SELECT jsonb_agg(jsonb_build_array(m -> 'seq', m -> 'body') ORDER BY o) FROM chat.history(11001, :c, 27, 3) WITH ORDINALITY t(m, o)),
	'[[26, "old #26"], [25, ""], [24, "old #24"]]'::jsonb, 'history shows the deletion in the default partition');
SELECT is(pg_temp.walk_history(:c, 6), ARRAY(SELECT generate_series(40, 1, -1))::bigint[], 'the walk still yields 40..1');

-- Idempotent sends look back chat.idempotency_window (7 days), pruning by
-- month partition: a client_id used two years ago (partition A, beyond the
-- months the window reaches) starts a new message.
SELECT is(chat.send_message(11000, :c, 'reused id A', 'e5eebc99-9c0b-4ef8-bb6d-6bb9bd380a05') ->> 'seq', '41',
	'a client_id from two years ago (partition A) is a new message');

-- A partition created now is picked up: history still finds every message.
SELECT lives_ok(format('CREATE TABLE chat.messages_t110_new PARTITION OF chat.messages FOR VALUES FROM (%L) TO (%L)',
		date_trunc('month', now()) - interval '18 months', date_trunc('month', now()) - interval '17 months'),
	'a partition for 18 months ago is added');
SELECT is(pg_temp.seqs(format('chat.history(11000, %s, NULL, 1000)', :c)),
	ARRAY(SELECT generate_series((SELECT last_seq FROM chat.chats WHERE chat_id = :c), 1, -1))::bigint[],
	'history after the change: every message, newest first');

SELECT * FROM finish();
ROLLBACK;

-- Remove the committed set-up.
DO $cleanup$
DECLARE
	cur timestamptz := date_trunc('month', now());
BEGIN
	DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 11000 AND 11099);
	DELETE FROM chat.chats WHERE user_a BETWEEN 11000 AND 11099;
	EXECUTE format('DROP TABLE chat.%I, chat.%I',
		'messages_' || to_char(cur - interval '24 months', 'YYYY_MM'), 'messages_' || to_char(cur - interval '23 months', 'YYYY_MM'));
END
$cleanup$;
