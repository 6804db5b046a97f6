-- Partition maintenance: retention drops whole months past
-- chat.retention_months with their attachments rows (object keys reported),
-- or detaches them into chat.archive_schema.
BEGIN;
SELECT plan(24);
SET TimeZone = 'UTC';

CREATE TEMP TABLE t AS
SELECT chat.open_chat(2001, 'direct', NULL, 2002) AS c, date_trunc('month', now(), 'UTC') AS base;
CREATE FUNCTION pg_temp.pname(months int) RETURNS text LANGUAGE sql AS $$
	SELECT 'chat.messages_' || to_char((SELECT base FROM t) + make_interval(months => months), 'YYYY_MM')
$$;
CREATE FUNCTION pg_temp.arr(j jsonb) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(x ORDER BY o), '{}') FROM jsonb_array_elements_text(j) WITH ORDINALITY AS u(x, o)
$$;

-- message 1, sent now (this month) with an attachment
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
SELECT c, 2001, 'test/this-month.jpg', 'a.jpg', 'image/jpeg', 10 FROM t;
SELECT chat.send_message(2001, c, 'photo', NULL,
	ARRAY[(SELECT attachment_id FROM chat.attachments WHERE object_key = 'test/this-month.jpg')]) FROM t;
-- message 2, next month, with an attachment
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at, n_attachments)
SELECT c, 2, 2, 2001, 'later', base + interval '1 month 3 days', 1 FROM t;
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size, message_seq)
SELECT c, 2001, 'test/next-month.jpg', 'b.jpg', 'image/jpeg', 10, 2 FROM t;
UPDATE chat.chats SET last_seq = 2, last_rev = 2, last_message_at = t.base + interval '1 month 3 days'
FROM t WHERE chat_id = t.c;
-- an upload never sent: not retention's business
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
SELECT c, 2001, 'test/pending.jpg', 'c.jpg', 'image/jpeg', 10 FROM t;

SELECT ok((SELECT count(*) FROM pg_depend WHERE objid = pg_temp.pname(0)::regclass AND deptype = 'e') = 1,
	'this month''s partition was made by CREATE EXTENSION: a member of it');

-- 13 months later, with 12 months of retention: this month goes.
SET chat.retention_months = 12;
CREATE TEMP TABLE r AS SELECT chat.maintain((SELECT base FROM t) + interval '13 months 1 day') AS r;
SELECT is(pg_temp.arr(r->'dropped'), ARRAY[pg_temp.pname(0)], 'the month wholly older than 12 months is dropped') FROM r;
SELECT is(pg_temp.arr(r->'attachment_keys'), '{test/this-month.jpg}', 'the report gives its attachments'' object keys') FROM r;
SELECT is(to_regclass(pg_temp.pname(0)), NULL, 'the table is gone');
SELECT is((SELECT array_agg(object_key) FROM chat.deleted_objects), '{test/this-month.jpg}',
	'the key is queued in chat.deleted_objects for the object-store cleaner');
SELECT is((SELECT array_agg(object_key ORDER BY object_key) FROM chat.attachments),
	'{test/next-month.jpg,test/pending.jpg}', 'its attachments rows are gone, the others stay');
SELECT is((SELECT array_agg(h->>'seq') FROM t, chat.history(2001, t.c) h), '{2}', 'history shows what is kept');
SELECT is((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) o
		   WHERE e.extname = 'chat' AND NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = o))::int, 0,
	'the extension no longer lists the dropped table for pg_dump');
SELECT throws_ok($$SELECT chat.edit_message(2001, (SELECT c FROM t), 1, 'x')$$, '22023', NULL,
	'a dropped message cannot be edited');
SELECT ok(to_regclass(pg_temp.pname(1)) IS NOT NULL, 'the next month is kept: not wholly older than 12 months');

-- idempotent
CREATE TEMP TABLE r2 AS SELECT chat.maintain((SELECT base FROM t) + interval '13 months 1 day') AS r;
SELECT is(pg_temp.arr(r->'dropped') || pg_temp.arr(r->'created'), '{}', 'the same run again does nothing') FROM r2;

-- detach: the month is kept, outside chat.messages, in chat_archive.
SET chat.retention_action = 'detach';
CREATE TEMP TABLE r3 AS SELECT chat.maintain((SELECT base FROM t) + interval '14 months 1 day') AS r;
SELECT is(pg_temp.arr(r->'archived'), ARRAY['chat_archive.' || split_part(pg_temp.pname(1), '.', 2)],
	'with retention_action = detach the month is archived') FROM r3;
SELECT is(pg_temp.arr(r->'dropped'), '{}', 'and not dropped') FROM r3;
SELECT is(pg_temp.arr(r->'attachment_keys'), '{}', 'no object key to delete') FROM r3;
SELECT is((SELECT count(*) FROM pg_class WHERE relname = split_part(pg_temp.pname(1), '.', 2)
		   AND relnamespace = 'chat_archive'::regnamespace AND NOT relispartition)::int, 1,
	'the table sits in chat_archive, detached');
SELECT is((SELECT count(*) FROM chat.partitions() WHERE partition::text LIKE '%' || split_part(pg_temp.pname(1), '.', 2))::int, 0,
	'it is no longer a partition');
SELECT is((SELECT count(*) FROM chat.attachments WHERE object_key = 'test/next-month.jpg')::int, 1,
	'its attachments rows stay');
SELECT is((SELECT count(*) FROM t, chat.history(2001, t.c))::int, 0, 'history no longer shows it');
SELECT is((SELECT nspowner FROM pg_namespace WHERE nspname = 'chat_archive'),
	(SELECT relowner FROM pg_class WHERE oid = 'chat.messages'::regclass), 'the archive schema belongs to the owner of chat.messages');

-- An archived table of the same name blocks a second archive: skipped, reported.
DO $$ BEGIN EXECUTE format('CREATE TABLE chat_archive.%s (x int)', split_part(pg_temp.pname(2), '.', 2)); END $$;
CREATE TEMP TABLE r4 AS SELECT chat.maintain((SELECT base FROM t) + interval '15 months 1 day') AS r;
SELECT is(r->'skipped'->0->>'partition', pg_temp.pname(2), 'a name taken in the archive is skipped') FROM r4;
SELECT ok(to_regclass(pg_temp.pname(2)) IS NOT NULL, 'and the partition stays');

-- A month detached but not dropped (a run stopped between its two steps,
-- or a DBA) is retired too once past the cutoff, even an extension member.
RESET chat.retention_action;
DO $$ BEGIN EXECUTE format('ALTER TABLE chat.messages DETACH PARTITION %s', pg_temp.pname(3)); END $$;
CREATE TEMP TABLE r6 AS SELECT chat.maintain((SELECT base FROM t) + interval '16 months 1 day') AS r;
SELECT ok(pg_temp.arr(r->'dropped') @> ARRAY[pg_temp.pname(2), pg_temp.pname(3)],
	'a detached month left in schema chat is dropped with the partitions') FROM r6;
SELECT is(to_regclass(pg_temp.pname(3)), NULL, 'it is gone');

-- keep forever again: nothing retired
SET chat.retention_months = 0;
CREATE TEMP TABLE r5 AS SELECT chat.maintain((SELECT base FROM t) + interval '100 months') AS r;
SELECT is(pg_temp.arr(r->'archived') || pg_temp.arr(r->'dropped'), '{}', 'retention_months = 0 keeps every month') FROM r5;

SELECT * FROM finish();
ROLLBACK;
