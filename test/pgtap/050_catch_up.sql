-- catch_up: every change after a cursor, oldest change first: new messages
-- and edits / deletions of older ones; cursors; paging; refusals.
-- Users 5000..5099. (Across monthly partitions: 110_partitions.sql.)
BEGIN;
\ir _helpers.psql
SELECT plan(36);

-- Catch up page by page from cursor `after`, passing the last cursor seen;
-- returns the {seq, cursor} pairs in the order received.
CREATE FUNCTION pg_temp.walk_catch_up(u bigint, c bigint, after bigint, page int) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	got jsonb := '[]';
	rows jsonb;
BEGIN
	FOR i IN 1..1000 LOOP
		SELECT coalesce(jsonb_agg(jsonb_build_object('seq', m -> 'seq', 'cursor', m -> 'cursor') ORDER BY o), '[]')
		INTO rows FROM chat.catch_up(u, c, after, page) WITH ORDINALITY AS t(m, o);
		EXIT WHEN jsonb_array_length(rows) = 0;
		got := got || rows;
		after := (rows -> -1 ->> 'cursor')::bigint;
	END LOOP;
	RETURN got;
END
$$;

-- {seq, cursor} pairs of one catch_up call.
CREATE FUNCTION pg_temp.changes(u bigint, c bigint, after bigint, page int DEFAULT 500) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('seq', m -> 'seq', 'cursor', m -> 'cursor') ORDER BY o), '[]')
	FROM chat.catch_up(u, c, after, page) WITH ORDINALITY AS t(m, o)
$$;

SELECT chat.open_chat(5001, 'product', 500, 5002) AS c \gset

-- Nothing to catch up in an empty chat.
SELECT is_empty(format('SELECT * FROM chat.catch_up(5001, %s, 0)', :c), 'an empty chat has nothing to catch up');

SELECT is((SELECT count(*) FROM (SELECT chat.send_message(CASE WHEN i % 2 = 1 THEN 5001 ELSE 5002 END, :c, 'm' || i)
		FROM generate_series(1, 5) i) s), 5::bigint, 'five messages: odd ones by 5001, even ones by 5002');

-- From 0: every message, oldest first, each with its cursor.
SELECT is(pg_temp.changes(5001, :c, 0),
	'[{"seq":1,"cursor":1},{"seq":2,"cursor":2},{"seq":3,"cursor":3},{"seq":4,"cursor":4},{"seq":5,"cursor":5}]'::jsonb,
	'after 0: messages 1..5 with cursors 1..5');
SELECT is((SELECT count(*) FROM chat.catch_up(5002, :c, 0) m
		WHERE m ?& ARRAY['cursor', 'chat_id', 'seq', 'sender_id', 'body', 'created_at', 'edited_at', 'deleted', 'client_id', 'attachments']),
	5::bigint, 'every row is a full message object with a cursor');
SELECT is((SELECT array_agg(m ->> 'body' ORDER BY o) FROM chat.catch_up(5002, :c, 0) WITH ORDINALITY t(m, o)),
	ARRAY['m1', 'm2', 'm3', 'm4', 'm5'], 'the bodies, in order');
SELECT is(pg_temp.changes(5002, :c, 3), '[{"seq":4,"cursor":4},{"seq":5,"cursor":5}]'::jsonb,
	'after 3: messages 4 and 5');
SELECT is_empty(format('SELECT * FROM chat.catch_up(5001, %s, 5)', :c), 'after the last cursor: nothing');
SELECT is_empty(format('SELECT * FROM chat.catch_up(5001, %s, 100)', :c), 'after a cursor past the end: nothing');

-- An edit and a delete of older messages are changes after the cursor.
SELECT lives_ok(format($$SELECT chat.edit_message(5002, %s, 2, 'm2 (edited)')$$, :c), 'edit message 2');
SELECT lives_ok(format($$SELECT chat.delete_message(5001, %s, 3)$$, :c), 'delete message 3');
SELECT is(pg_temp.changes(5001, :c, 5), '[{"seq":2,"cursor":6},{"seq":3,"cursor":7}]'::jsonb,
	'after 5: the edit (cursor 6), then the deletion (cursor 7)');
SELECT is((SELECT jsonb_agg(jsonb_build_array(m -> 'body', m -> 'deleted', m -> 'edited_at' <> 'null') ORDER BY o)
		FROM chat.catch_up(5001, :c, 5) WITH ORDINALITY t(m, o)),
	'[["m2 (edited)", false, true], ["", true, true]]'::jsonb,
	'the edited message with its new body, the deleted one empty and deleted');
SELECT is(pg_temp.changes(5001, :c, 0),
	'[{"seq":1,"cursor":1},{"seq":4,"cursor":4},{"seq":5,"cursor":5},{"seq":2,"cursor":6},{"seq":3,"cursor":7}]'::jsonb,
	'after 0: each message once, in cursor order, with its latest version');
SELECT is(pg_temp.changes(5001, :c, 4), '[{"seq":5,"cursor":5},{"seq":2,"cursor":6},{"seq":3,"cursor":7}]'::jsonb,
	'after 4: message 5, then the edit and the deletion');
SELECT is((SELECT last_rev FROM chat.chats WHERE chat_id = :c),
	(SELECT (m ->> 'cursor')::bigint FROM chat.catch_up(5001, :c, 0) WITH ORDINALITY t(m, o) ORDER BY o DESC LIMIT 1),
	'the last cursor is the chat''s change counter');
SELECT is_empty(format('SELECT * FROM chat.catch_up(5001, %s, 7)', :c), 'after cursor 7: nothing');

-- A new message and a second edit of the same message.
SELECT is((chat.send_message(5002, :c, 'm6') ->> 'cursor')::int, 8, 'message 6 gets cursor 8');
SELECT is(pg_temp.changes(5002, :c, 7), '[{"seq":6,"cursor":8}]'::jsonb, 'after 7: message 6');
SELECT is((chat.edit_message(5002, :c, 2, 'm2 (edited twice)') ->> 'cursor')::int, 9, 'the second edit of message 2 gets cursor 9');
SELECT is(pg_temp.changes(5001, :c, 5), '[{"seq":3,"cursor":7},{"seq":6,"cursor":8},{"seq":2,"cursor":9}]'::jsonb,
	'a message edited twice comes once, at its latest cursor');
SELECT is(pg_temp.changes(5001, :c, 0), pg_temp.changes(5002, :c, 0), 'both members catch up the same changes');

-- Paging with page_size: passing the last cursor returns the rest, no
-- change twice, none missed.
SELECT is(pg_temp.changes(5001, :c, 0, 2), '[{"seq":1,"cursor":1},{"seq":4,"cursor":4}]'::jsonb,
	'page_size 2: the two oldest changes');
SELECT is(pg_temp.changes(5001, :c, 4, 2), '[{"seq":5,"cursor":5},{"seq":3,"cursor":7}]'::jsonb,
	'the next page from the last cursor');
SELECT is(pg_temp.walk_catch_up(5001, :c, 0, 2), pg_temp.changes(5001, :c, 0),
	'walking with page_size 2 returns every change once, in order');
SELECT is(pg_temp.walk_catch_up(5001, :c, 0, 1), pg_temp.changes(5001, :c, 0),
	'walking with page_size 1 too');
SELECT is(pg_temp.walk_catch_up(5001, :c, 3, 2), pg_temp.changes(5001, :c, 3),
	'walking from a cursor in the middle too');

-- Attachments come inline.
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
VALUES (:c, 5001, 't050/a', 'a.pdf', 'application/pdf', 5);
SELECT lives_ok(format($$SELECT chat.send_message(5001, %s, 'file', NULL,
		ARRAY(SELECT attachment_id FROM chat.attachments WHERE object_key = 't050/a'))$$, :c), 'message 7 with a file');
SELECT is((SELECT m -> 'attachments' -> 0 ->> 'name' FROM chat.catch_up(5002, :c, 9) m), 'a.pdf',
	'catch_up returns attachments inline');

-- Refusals.
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5003, %s, 0)', :c), '42501', 'chat not found or access denied',
	'a non-member cannot catch up');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, 0)', pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'a missing chat: the same refusal');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, -1)', :c), '22023', NULL, 'a negative after is refused');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, NULL)', :c), '22023', NULL, 'after NULL is refused');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, 0, 0)', :c), '22023', NULL, 'page_size 0 is refused');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, 0, -1)', :c), '22023', NULL, 'page_size -1 is refused');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, 0, 100000)', :c), '22023', NULL, 'page_size 100000 is refused');
SELECT throws_ok(format('SELECT * FROM chat.catch_up(5001, %s, 0, NULL)', :c), '22023', NULL, 'page_size NULL is refused');

SELECT * FROM finish();
ROLLBACK;
