-- history: newest first, paging by before_seq, page sizes, message content
-- (edits, deletions, attachments inline), refusals. Users 4000..4099.
-- (Paging across monthly partitions: 110_partitions.sql.)
BEGIN;
\ir _helpers.psql
SELECT plan(34);

-- Walk the whole history page by page, passing the oldest seq seen as
-- before_seq; returns every seq in the order the pages gave them.
CREATE FUNCTION pg_temp.walk_history(u bigint, c bigint, page int) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
	all_seqs bigint[] := '{}';
	page_seqs bigint[];
	before bigint := NULL;
BEGIN
	FOR i IN 1..1000 LOOP
		page_seqs := pg_temp.seqs(format('chat.history(%s, %s, %s, %s)', u, c, coalesce(before::text, 'NULL'), page));
		EXIT WHEN cardinality(page_seqs) = 0;
		all_seqs := all_seqs || page_seqs;
		before := page_seqs[cardinality(page_seqs)];
	END LOOP;
	RETURN all_seqs;
END
$$;

SELECT chat.open_chat(4001, 'direct', NULL, 4002) AS c \gset
SELECT chat.open_chat(4001, 'direct', NULL, 4003) AS empty \gset

-- An empty chat has no history.
SELECT is_empty(format('SELECT * FROM chat.history(4001, %s)', :empty), 'an empty chat has an empty history');

SELECT is((SELECT count(*) FROM (SELECT chat.send_message(CASE WHEN i % 2 = 0 THEN 4002 ELSE 4001 END, :c, 'm' || i)
		FROM generate_series(1, 120) i) s), 120::bigint, '120 messages sent');
SELECT is_empty(format($$SELECT seq FROM chat.messages WHERE chat_id = %s AND body <> 'm' || seq$$, :c),
	'message i has seq i');

-- Default page: the newest 50, newest first, complete message objects.
SELECT is(pg_temp.seqs(format('chat.history(4001, %s)', :c)), ARRAY(SELECT generate_series(120, 71, -1))::bigint[],
	'default page: seqs 120..71, newest first');
SELECT is((SELECT count(*) FROM chat.history(4001, :c) m
		WHERE m ?& ARRAY['chat_id', 'seq', 'sender_id', 'body', 'created_at', 'edited_at', 'deleted', 'client_id', 'attachments']),
	50::bigint, 'every row carries every key of the message object');
SELECT is((SELECT m FROM chat.history(4002, :c, NULL, 1) m),
	(SELECT jsonb_build_object('chat_id', chat_id, 'seq', seq, 'sender_id', sender_id, 'body', body, 'deleted', deleted,
		'client_id', client_id, 'edited_at', edited_at, 'attachments', '[]'::jsonb, 'cursor', rev)
		FROM chat.messages WHERE chat_id = :c AND seq = 120) || jsonb_build_object('created_at',
		(SELECT m -> 'created_at' FROM chat.history(4002, :c, NULL, 1) m)),
	'the newest row is the stored message 120 (both members may read)');
SELECT is((SELECT (m ->> 'created_at')::timestamptz FROM chat.history(4001, :c, NULL, 1) m),
	(SELECT created_at FROM chat.messages WHERE chat_id = :c AND seq = 120), 'created_at is the stored time');

-- Paging with before_seq.
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, 71)', :c)), ARRAY(SELECT generate_series(70, 21, -1))::bigint[],
	'before_seq 71: seqs 70..21');
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, 21)', :c)), ARRAY(SELECT generate_series(20, 1, -1))::bigint[],
	'before_seq 21: the last 20');
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, 2)', :c)), ARRAY[1]::bigint[], 'before_seq 2: message 1 only');
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, 1)', :c)), '{}'::bigint[], 'before_seq 1: nothing before it');
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, 1000, 3)', :c)), ARRAY[120, 119, 118]::bigint[],
	'before_seq past the end: the newest page');
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, NULL, 1)', :c)), ARRAY[120]::bigint[], 'page_size 1');
SELECT is(pg_temp.seqs(format('chat.history(4001, %s, NULL, 1000)', :c)), ARRAY(SELECT generate_series(120, 1, -1))::bigint[],
	'page_size 1000 returns the whole chat');
SELECT is(pg_temp.walk_history(4001, :c, 7), ARRAY(SELECT generate_series(120, 1, -1))::bigint[],
	'walking with page_size 7 yields 120..1, each once, in order');
SELECT is(pg_temp.walk_history(4001, :c, 50), ARRAY(SELECT generate_series(120, 1, -1))::bigint[],
	'walking with page_size 50 yields 120..1, each once, in order');

-- Edits, deletions and attachments show in history.
SELECT lives_ok(format($$SELECT chat.edit_message(4001, %s, 101, 'm101 (edited)')$$, :c), 'edit message 101');
SELECT lives_ok(format($$SELECT chat.delete_message(4002, %s, 100)$$, :c), 'delete message 100');
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
VALUES (:c, 4001, 't040/a', 'a.jpg', 'image/jpeg', 111), (:c, 4001, 't040/b', 'b.jpg', 'image/jpeg', 222),
       (:c, 4002, 't040/c', 'c.jpg', 'image/jpeg', 333);
SELECT lives_ok(format($$SELECT chat.send_message(4001, %s, 'two files', NULL,
		ARRAY(SELECT attachment_id FROM chat.attachments WHERE object_key IN ('t040/a', 't040/b')))$$, :c),
	'message 121 with two attachments');
SELECT lives_ok(format($$SELECT chat.send_message(4002, %s, 'one file', NULL,
		ARRAY(SELECT attachment_id FROM chat.attachments WHERE object_key = 't040/c'))$$, :c),
	'message 122 with one attachment');
SELECT is((SELECT jsonb_build_array(m -> 'body', m -> 'deleted', m -> 'edited_at' <> 'null') FROM chat.history(4001, :c, 102, 1) m),
	'["m101 (edited)", false, true]'::jsonb, 'history shows the edited body and edited_at');
SELECT is((SELECT jsonb_build_array(m -> 'body', m -> 'deleted') FROM chat.history(4001, :c, 101, 1) m),
	'["", true]'::jsonb, 'history shows the deleted message with an empty body, deleted true');
SELECT is((SELECT jsonb_agg(jsonb_build_object('seq', m -> 'seq', 'files',
			(SELECT jsonb_agg(a -> 'name') FROM jsonb_array_elements(m -> 'attachments') a)))
		FROM chat.history(4001, :c, NULL, 3) m),
	'[{"seq": 122, "files": ["c.jpg"]}, {"seq": 121, "files": ["a.jpg", "b.jpg"]}, {"seq": 120, "files": null}]'::jsonb,
	'attachments come inline with the messages of a page');
SELECT is((SELECT m -> 'attachments' -> 0 FROM chat.history(4001, :c, NULL, 1) m),
	(SELECT jsonb_build_object('id', attachment_id, 'name', 'c.jpg', 'content_type', 'image/jpeg', 'size', 333)
		FROM chat.attachments WHERE object_key = 't040/c'),
	'an attachment is {id, name, content_type, size}');

-- Refusals: access (42501, one message) and invalid arguments (22023).
SELECT throws_ok(format('SELECT * FROM chat.history(4003, %s)', :c), '42501', 'chat not found or access denied',
	'a non-member cannot read the history');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s)', pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'a missing chat: the same refusal');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s, NULL, 0)', :c), '22023', NULL, 'page_size 0 is refused');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s, NULL, -1)', :c), '22023', NULL, 'page_size -1 is refused');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s, NULL, 100000)', :c), '22023', NULL, 'page_size 100000 is refused');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s, NULL, NULL)', :c), '22023', NULL, 'page_size NULL is refused');
SELECT throws_ok(format('SELECT * FROM chat.history(NULL, %s)', :c), '22023', NULL, 'user_id NULL is refused');
SELECT throws_ok('SELECT * FROM chat.history(4001, NULL)', '22023', NULL, 'chat_id NULL is refused');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s, 0)', :c), '22023', NULL, 'before_seq 0 is refused');
SELECT throws_ok(format('SELECT * FROM chat.history(4001, %s, -5)', :c), '22023', NULL, 'a negative before_seq is refused');

SELECT * FROM finish();
ROLLBACK;
