-- Partition maintenance: rows found in the default partition are moved into
-- proper partitions, also when attaching a month whose rows are already in
-- the default partition; history, catch_up and edits stay correct.
BEGIN;
SELECT plan(26);
SET TimeZone = 'UTC';

CREATE TEMP TABLE t AS
SELECT chat.open_chat(1001, 'direct', NULL, 1002) AS c, date_trunc('month', now(), 'UTC') AS base;
-- 30 messages stamped in months +24 to +26, which have no partition yet
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at)
SELECT t.c, g, g, 1001, 'late ' || g, t.base + interval '24 months' + (g - 1) * interval '2 days 22 hours'
FROM t, generate_series(1, 30) g;
UPDATE chat.chats SET last_seq = 30, last_rev = 30, created_at = t.base + interval '24 months',
	last_message_at = t.base + interval '24 months 85 days'
FROM t WHERE chat_id = t.c;
CREATE TEMP TABLE before AS
SELECT array_agg(h ORDER BY (h->>'seq')::int DESC) AS page FROM t, chat.history(1001, t.c, NULL, 100) h;
CREATE FUNCTION pg_temp.pname(months int) RETURNS text LANGUAGE sql AS $$
	SELECT 'chat.messages_' || to_char((SELECT base FROM t) + make_interval(months => months), 'YYYY_MM')
$$;
CREATE FUNCTION pg_temp.arr(j jsonb) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(x ORDER BY o), '{}') FROM jsonb_array_elements_text(j) WITH ORDINALITY AS u(x, o)
$$;

SELECT is((SELECT count(*) FROM chat.messages_default)::int, 30, 'the messages landed in the default partition');
SELECT is(array_length(page, 1), 30, 'history reads them there') FROM before;

CREATE TEMP TABLE r AS SELECT chat.maintain() AS r;
SELECT is((r->>'moved_rows')::int, 30, 'maintain moved the 30 rows') FROM r;
SELECT is(pg_temp.arr(r->'created'), ARRAY[pg_temp.pname(24), pg_temp.pname(25), pg_temp.pname(26)],
	'and made their three months') FROM r;
SELECT is((SELECT sum((x->>'rows')::int) FROM jsonb_array_elements(r->'rescued') x)::int, 30,
	'the report counts the rows per partition') FROM r;
SELECT is((SELECT array_agg(x->>'partition' ORDER BY x->>'partition') FROM jsonb_array_elements(r->'rescued') x),
	ARRAY[pg_temp.pname(24), pg_temp.pname(25), pg_temp.pname(26)], 'rescued names the partitions') FROM r;
SELECT is((SELECT count(*) FROM chat.messages_default)::int, 0, 'the default partition is empty');
SELECT is((SELECT count(*) FROM chat.messages m, t WHERE m.chat_id = t.c)::int, 30, 'no row lost or doubled');
SELECT is((SELECT array_agg(h ORDER BY (h->>'seq')::int DESC) FROM t, chat.history(1001, t.c, NULL, 100) h),
	(SELECT page FROM before), 'history returns the same page as before');
SELECT is((SELECT array_agg(h->>'seq' ORDER BY (h->>'seq')::int DESC) FROM t, chat.history(1001, t.c, 11, 5) h),
	'{10,9,8,7,6}', 'a page in the middle is right');
SELECT is((SELECT count(*) FROM t, chat.catch_up(1001, t.c, 0, 100))::int, 30, 'catch_up sees all of them');
SELECT is((SELECT chat.edit_message(1001, c, 5, 'edited')->>'body' FROM t), 'edited', 'a moved message can be edited');
SELECT is((SELECT body FROM chat.messages m, t WHERE m.chat_id = t.c AND seq = 5), 'edited', 'in its new partition');
SELECT is((SELECT m.tableoid::regclass::text FROM chat.messages m, t WHERE m.chat_id = t.c AND seq = 5), pg_temp.pname(24),
	'message 5 lives in the partition of its month');

-- idempotent
CREATE TEMP TABLE r2 AS SELECT chat.maintain() AS r;
SELECT is((r->>'moved_rows')::int, 0, 'a second run moves nothing') FROM r2;
SELECT is(pg_temp.arr(r->'created'), '{}', 'a second run creates nothing') FROM r2;

-- Attaching a month of the premake window while the default partition
-- already holds rows of its range: they are moved in the same transaction.
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at)
SELECT t.c, 30 + g, 30 + g, 1001, 'far ' || g, t.base + interval '40 months 1 day' + g * interval '1 hour'
FROM t, generate_series(1, 5) g;
UPDATE chat.chats SET last_seq = 35, last_rev = 35, last_message_at = t.base + interval '40 months 2 days'
FROM t WHERE chat_id = t.c;
CREATE TEMP TABLE r3 AS SELECT chat.maintain((SELECT base FROM t) + interval '40 months 3 days') AS r;
SELECT is(r->'created'->>0, pg_temp.pname(40), 'the month of at is made while the default holds its rows') FROM r3;
SELECT is((r->>'moved_rows')::int, 5, 'its 5 rows were moved into it') FROM r3;
SELECT is((SELECT count(*) FROM chat.messages_default)::int, 0, 'the default partition is empty again');
SELECT is((SELECT array_agg(h->>'seq' ORDER BY (h->>'seq')::int DESC) FROM t, chat.history(1001, t.c, NULL, 7) h),
	'{35,34,33,32,31,30,29}', 'history spans the partitions in order');

-- A name taken by an unrelated table: reported, rows stay, nothing breaks.
DO $$ BEGIN EXECUTE format('CREATE TABLE %s (note text)', pg_temp.pname(50)); END $$;
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at)
SELECT t.c, 36, 36, 1001, 'squatted', t.base + interval '50 months 1 day' FROM t;
CREATE TEMP TABLE r4 AS SELECT chat.maintain() AS r;
SELECT is(r->'skipped'->0->>'partition', pg_temp.pname(50), 'a month whose name is taken is skipped') FROM r4;
SELECT is(r->'skipped'->0->>'reason', 'a table of this name exists and is not a partition left by maintenance',
	'the report says why') FROM r4;
SELECT is((SELECT count(*) FROM chat.messages_default)::int, 1, 'its row stays in the default partition');

-- A standalone table left by a deferred run (range constraint and all) is
-- attached by the next run rather than made again.
DO $$
BEGIN
	EXECUTE format('CREATE TABLE %s (LIKE chat.messages INCLUDING ALL)', pg_temp.pname(60));
	EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %s CHECK (created_at >= %L AND created_at < %L)',
		pg_temp.pname(60), split_part(pg_temp.pname(60), '.', 2) || '_range',
		(SELECT base FROM t) + interval '60 months', (SELECT base FROM t) + interval '61 months');
END
$$;
CREATE TEMP TABLE r5 AS SELECT chat.maintain((SELECT base FROM t) + interval '60 months') AS r;
SELECT is(r->'created'->>0, pg_temp.pname(60), 'a left-over standalone table is attached') FROM r5;
SELECT ok((SELECT relispartition FROM pg_class WHERE oid = pg_temp.pname(60)::regclass), 'it is a partition now');
SELECT is((SELECT count(*) FROM chat.partitions() WHERE partition = pg_temp.pname(60)::regclass
		   AND range_from = (SELECT base FROM t) + interval '60 months'
		   AND range_to = (SELECT base FROM t) + interval '61 months')::int, 1,
	'with the bounds of its month');

SELECT * FROM finish();
ROLLBACK;
