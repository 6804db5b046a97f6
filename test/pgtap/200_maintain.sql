-- Partition maintenance: what CREATE EXTENSION made, chat.partitions(), and
-- chat.maintain() over 30 months of time travel with 12 months of retention:
-- partitions made and dropped, the report, idempotence.
BEGIN;
SELECT plan(135);

SET TimeZone = 'UTC';

-- The monthly partitions, oldest first.
CREATE FUNCTION pg_temp.months() RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(partition::text ORDER BY range_from), '{}')
	FROM chat.partitions() WHERE NOT is_default
$$;
-- Partition name of the UTC month holding t.
CREATE FUNCTION pg_temp.pname(t timestamptz) RETURNS text LANGUAGE sql AS $$
	SELECT 'chat.messages_' || to_char(t AT TIME ZONE 'UTC', 'YYYY_MM')
$$;
-- a minus b, order kept.
CREATE FUNCTION pg_temp.minus(a text[], b text[]) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(x ORDER BY o), '{}') FROM unnest(a) WITH ORDINALITY AS u(x, o) WHERE x <> ALL (b)
$$;
-- A jsonb array of strings as text[].
CREATE FUNCTION pg_temp.arr(j jsonb) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(x ORDER BY o), '{}') FROM jsonb_array_elements_text(j) WITH ORDINALITY AS u(x, o)
$$;

-- Install: this month and three ahead, and the default partition.
SELECT is(pg_temp.months(),
	ARRAY(SELECT pg_temp.pname(date_trunc('month', now(), 'UTC') + make_interval(months => i)) FROM generate_series(0, 3) i),
	'CREATE EXTENSION made this month and the next three (UTC months)');
SELECT is((SELECT array_agg(partition::text) FROM chat.partitions() WHERE is_default), '{chat.messages_default}',
	'one default partition, chat.messages_default');
SELECT ok((SELECT bool_and(range_to = next_from) FROM (
		SELECT range_to, lead(range_from) OVER (ORDER BY range_from) AS next_from
		FROM chat.partitions() WHERE NOT is_default) p WHERE next_from IS NOT NULL),
	'the monthly ranges are contiguous');
SELECT ok((SELECT bool_and(range_from IS NULL AND range_to IS NULL) FROM chat.partitions() WHERE is_default),
	'the default partition has no range');
-- (earlier suites may have left rows behind in this month: counts only need to be sane)
SELECT ok((SELECT bool_and(estimated_rows >= 0 AND total_bytes > 0) FROM chat.partitions()),
	'every partition reports estimated rows and its size (indexes included)');
SELECT is((SELECT partition::text FROM chat.partitions() OFFSET 4 LIMIT 1), 'chat.messages_default',
	'oldest first, the default partition last');

-- Right after install there is nothing to do.
SELECT is(pg_temp.arr(chat.maintain()->'created'), '{}', 'maintain() after install creates nothing');
SELECT ok(chat.maintain() ?& ARRAY['at', 'created', 'dropped', 'archived', 'moved_rows', 'rescued',
	'attachment_keys', 'deferred', 'skipped', 'premake_months', 'retention_months', 'retention_action',
	'duration_ms'], 'the report has every key');

-- Time travel over 30 months with 12 months of retention.
SET chat.retention_months = 12;
SET chat.premake_months = 3;
CREATE FUNCTION pg_temp.travel() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	base timestamptz := date_trunc('month', now(), 'UTC');
	at timestamptz;
	r jsonb;
	before text[];
	after text[];
	expected text[];
BEGIN
	FOR i IN 1..30 LOOP
		at := base + make_interval(months => i, days => 14, hours => 7);
		before := pg_temp.months();
		r := chat.maintain(at);
		after := pg_temp.months();
		-- from the install's first month, up to three ahead of at, ending after at - 12 months
		expected := ARRAY(
			SELECT pg_temp.pname(m)
			FROM generate_series(base, date_trunc('month', at, 'UTC') + interval '3 months', interval '1 month') m
			WHERE m + interval '1 month' > at - interval '12 months'
			ORDER BY m);
		RETURN NEXT is(after, expected, format('month +%s: the partitions', i));
		RETURN NEXT is(pg_temp.arr(r->'created'), pg_temp.minus(after, before),
			format('month +%s: the report lists what was created', i));
		RETURN NEXT is(pg_temp.arr(r->'dropped'), pg_temp.minus(before, after),
			format('month +%s: the report lists what was dropped', i));
		RETURN NEXT is(jsonb_array_length(r->'deferred') + jsonb_array_length(r->'skipped'), 0,
			format('month +%s: nothing deferred or skipped', i));
	END LOOP;
END
$$;
SELECT * FROM pg_temp.travel();

SELECT is(pg_temp.arr(chat.maintain(date_trunc('month', now(), 'UTC') + interval '30 months 14 days 7 hours')->'created'),
	'{}', 'idempotent: the same at again creates nothing');
SELECT is(pg_temp.arr(chat.maintain(date_trunc('month', now(), 'UTC') + interval '30 months 14 days 7 hours')->'dropped'),
	'{}', 'idempotent: the same at again drops nothing');
SELECT is(array_length(pg_temp.months(), 1), 16, 'at the end: 12 months kept, the current one and 3 ahead');
SELECT is((SELECT count(*) FROM pg_catalog.pg_tables
		   WHERE schemaname = 'chat' AND tablename ~ '^messages_\d{4}_\d{2}$')::int, 16,
	'no standalone table left behind');
SELECT is((SELECT count(*) FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
		   WHERE r.relnamespace = 'chat'::regnamespace AND c.conname ~ '_range$'
		   AND pg_get_constraintdef(c.oid) <> format('CHECK (((created_at >= %L::timestamp with time zone) AND (created_at < %L::timestamp with time zone)))',
				(SELECT range_from FROM chat.partitions() WHERE partition = r.oid::regclass),
				(SELECT range_to FROM chat.partitions() WHERE partition = r.oid::regclass)))::int, 0,
	'every range constraint used for attaching matches its partition''s bounds');
SELECT ok((SELECT bool_and(pg_get_indexdef(i.indexrelid) IS NOT NULL AND i.indisvalid) FROM pg_catalog.pg_index i
		   WHERE i.indrelid = (SELECT partition FROM chat.partitions() ORDER BY range_from DESC NULLS LAST LIMIT 1)),
	'a made partition has valid indexes');
SELECT is((SELECT count(*) FROM pg_catalog.pg_index i
		   WHERE i.indrelid = (SELECT partition FROM chat.partitions() ORDER BY range_from DESC NULLS LAST LIMIT 1))::int,
	3, 'a made partition has the three indexes of chat.messages');

SELECT * FROM finish();
ROLLBACK;
