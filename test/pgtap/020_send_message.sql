-- send_message: the message object, seq numbering, the chat summary, read
-- state of sender and recipients, idempotent client_id, body limits,
-- attachments, refusals. Users 2000..2099.
BEGIN;
\ir _helpers.psql
SELECT plan(57);

SELECT chat.open_chat(2001, 'listing', 200, 2002) AS c \gset
SELECT chat.open_chat(2001, 'direct', NULL, 2002) AS c2 \gset

-- The first message: every key of the contract, the right values.
SELECT chat.send_message(2001, :c, 'Hello, is it available?') AS m1 \gset
SELECT ok(:'m1'::jsonb ?& ARRAY['chat_id', 'seq', 'sender_id', 'body', 'created_at', 'edited_at',
		'deleted', 'client_id', 'attachments'],
	'the message carries every key of the contract');
SELECT is(jsonb_build_array(:'m1'::jsonb -> 'chat_id', :'m1'::jsonb -> 'seq', :'m1'::jsonb -> 'sender_id',
		:'m1'::jsonb -> 'body', :'m1'::jsonb -> 'edited_at', :'m1'::jsonb -> 'deleted',
		:'m1'::jsonb -> 'client_id', :'m1'::jsonb -> 'attachments'),
	jsonb_build_array(:c::bigint, 1, 2001, 'Hello, is it available?', NULL, false, NULL, '[]'::jsonb),
	'chat_id, seq 1, sender, body, edited_at null, not deleted, no client_id, no attachments');
SELECT matches(:'m1'::jsonb ->> 'created_at', '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d)?|Z)$',
	'created_at is ISO 8601 with a time zone');
SELECT is((:'m1'::jsonb ->> 'created_at')::timestamptz,
	(SELECT created_at FROM chat.messages WHERE chat_id = :c AND seq = 1),
	'created_at is the stored time');
SELECT row_eq(format('SELECT sender_id, body, deleted, client_id, edited_at FROM chat.messages WHERE chat_id = %s AND seq = 1', :c),
	ROW(2001::bigint, 'Hello, is it available?'::text, false, NULL::uuid, NULL::timestamptz),
	'the message is stored');
SELECT row_eq(format('SELECT last_seq, last_rev, last_sender_id, last_preview, last_deleted, last_message_at = (%L::jsonb ->> ''created_at'')::timestamptz FROM chat.chats WHERE chat_id = %s', :'m1', :c),
	ROW(1::bigint, 1::bigint, 2001::bigint, 'Hello, is it available?'::text, false, true),
	'the chat summary points at the new message');

-- Sending moves the sender's read cursor to the own message; every other
-- member gets one more unread.
SELECT results_eq(format('SELECT user_id, read_seq, unread FROM chat.members WHERE chat_id = %s ORDER BY user_id', :c),
	$$VALUES (2001::bigint, 1::bigint, 0), (2002::bigint, 0::bigint, 1)$$,
	'after the first send: sender has read it, the seller has 1 unread');
SELECT is((chat.send_message(2001, :c, 'Still there?') ->> 'seq')::int, 2, 'the next message is seq 2');
SELECT results_eq(format('SELECT user_id, read_seq, unread FROM chat.members WHERE chat_id = %s ORDER BY user_id', :c),
	$$VALUES (2001::bigint, 2::bigint, 0), (2002::bigint, 0::bigint, 2)$$,
	'a second send: the recipient has 2 unread');
SELECT is((chat.send_message(2002, :c, 'Yes, it is.') ->> 'seq')::int, 3, 'the other side answers with seq 3');
SELECT results_eq(format('SELECT user_id, read_seq, unread FROM chat.members WHERE chat_id = %s ORDER BY user_id', :c),
	$$VALUES (2001::bigint, 2::bigint, 1), (2002::bigint, 3::bigint, 0)$$,
	'answering reads the chat up to the answer; the buyer has 1 unread');
SELECT is((SELECT count(DISTINCT sort_at) FROM chat.members m JOIN chat.chats c USING (chat_id)
		WHERE chat_id = :c AND sort_at = c.last_message_at), 1::bigint,
	'both members'' last activity is the last message''s time');
SELECT is_empty(format('SELECT seq FROM (SELECT seq, created_at, lag(created_at) OVER (ORDER BY seq) AS prev FROM chat.messages WHERE chat_id = %s) s WHERE created_at < prev', :c),
	'created_at never goes down as seq goes up');

-- Idempotent client_id: a retry returns the first message and stores nothing.
SELECT chat.send_message(2001, :c, 'Can I pay by card?', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') AS m4 \gset
SELECT is(:'m4'::jsonb ->> 'client_id', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'the message carries its client_id');
SELECT pg_temp.fingerprint() AS before \gset
SELECT is(chat.send_message(2001, :c, 'Can I pay by card?', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), :'m4'::jsonb,
	'a retry with the same client_id returns the first message');
SELECT is(chat.send_message(2001, :c, 'different text', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), :'m4'::jsonb,
	'a retry returns the first message even with another body');
SELECT is(pg_temp.fingerprint(), :'before', 'retries stored nothing and changed no counter or unread');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c), 4::bigint, 'still four messages');
SELECT is((SELECT last_seq FROM chat.chats WHERE chat_id = :c), 4::bigint, 'last_seq unchanged by the retries');
SELECT is((chat.send_message(2001, :c2, 'Can I pay by card?', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') ->> 'seq')::int, 1,
	'the same client_id in another chat is a new message there');
SELECT lives_ok(format($$SELECT chat.edit_message(2001, %s, 4, 'Can I pay by card? (edited)')$$, :c), 'the first message is edited');
SELECT is(chat.send_message(2001, :c, 'Can I pay by card?', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') ->> 'body', 'Can I pay by card? (edited)',
	'a retry returns the message as it is now (edited)');
SELECT isnt(chat.send_message(2001, :c, 'ping'), chat.send_message(2001, :c, 'ping'),
	'sends without client_id are never deduplicated');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c), 6::bigint, 'both pings stored');

-- The list preview is the first 200 characters (not bytes) of the body.
SELECT lives_ok(format($$SELECT chat.send_message(2002, %s, repeat('я', 250))$$, :c), 'a 250-character Cyrillic message');
SELECT is((SELECT last_preview FROM chat.chats WHERE chat_id = :c), repeat('я', 200),
	'the preview is its first 200 characters');

-- Body length: up to chat.max_body_length (4000) characters, not bytes.
SELECT chat.send_message(2002, :c, repeat('ж', 4000)) AS long \gset
SELECT is((SELECT array[char_length(body), octet_length(body)] FROM chat.messages WHERE chat_id = :c AND seq = (:'long'::jsonb ->> 'seq')::bigint),
	ARRAY[4000, 8000], 'a 4000-character Cyrillic body (8000 bytes) is stored whole');
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format($$SELECT chat.send_message(2002, %s, repeat('ж', 4001))$$, :c), '22023', NULL,
	'a 4001-character body is refused');
SELECT throws_ok(format($$SELECT chat.send_message(2002, %s, repeat('a', 4001))$$, :c), '22023', NULL,
	'a 4001-character ASCII body is refused');
SET LOCAL chat.max_body_length = 10;
SELECT lives_ok(format($$SELECT chat.send_message(2002, %s, 'ten chars!')$$, :c), 'with chat.max_body_length = 10, 10 characters pass');
SELECT throws_ok(format($$SELECT chat.send_message(2002, %s, 'eleven char')$$, :c), '22023', NULL,
	'with chat.max_body_length = 10, 11 characters are refused');
SELECT throws_ok(format($$SELECT chat.edit_message(2002, %s, 3, 'eleven char')$$, :c), '22023', NULL,
	'the limit applies to edits too');
RESET chat.max_body_length;
SELECT pg_temp.fingerprint() AS before \gset

-- Blank bodies are refused.
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, '')$$, :c), '22023', NULL, 'empty body is refused');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, '   ')$$, :c), '22023', NULL, 'a body of spaces is refused');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, E' \t\r\n ')$$, :c), '22023', NULL, 'a body of whitespace is refused');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, NULL)$$, :c), '22023', NULL, 'NULL body is refused');
SELECT throws_ok($$SELECT chat.send_message(NULL, 1, 'x')$$, '22023', NULL, 'NULL user_id is refused');
SELECT throws_ok($$SELECT chat.send_message(2001, NULL, 'x')$$, '22023', NULL, 'NULL chat_id is refused');
SELECT is(pg_temp.fingerprint(), :'before', 'the refused sends changed nothing');

-- Attachments: the sender's pending uploads in this chat ride with the message.
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
VALUES (:c, 2001, 't020/a', 'photo.jpg', 'image/jpeg', 1000),
       (:c, 2001, 't020/b', 'invoice.pdf', 'application/pdf', 2000),
       (:c, 2002, 't020/c', 'seller.png', 'image/png', 3000),
       (:c2, 2001, 't020/d', 'other-chat.png', 'image/png', 4000);
SELECT attachment_id AS a1 FROM chat.attachments WHERE object_key = 't020/a' \gset
SELECT attachment_id AS a2 FROM chat.attachments WHERE object_key = 't020/b' \gset
SELECT attachment_id AS a3 FROM chat.attachments WHERE object_key = 't020/c' \gset
SELECT attachment_id AS a4 FROM chat.attachments WHERE object_key = 't020/d' \gset
SELECT chat.send_message(2001, :c, '', NULL, ARRAY[:a2, :a1]::bigint[]) AS att \gset
SELECT is(:'att'::jsonb -> 'attachments',
	jsonb_build_array(
		jsonb_build_object('id', :a2, 'name', 'invoice.pdf', 'content_type', 'application/pdf', 'size', 2000),
		jsonb_build_object('id', :a1, 'name', 'photo.jpg', 'content_type', 'image/jpeg', 'size', 1000)),
	'attachments are listed in the order they were given, with name, content type and size');
SELECT is(:'att'::jsonb ->> 'body', '', 'a message with attachments may have an empty body');
SELECT is((SELECT array_agg(message_seq ORDER BY attachment_id) FROM chat.attachments WHERE attachment_id IN (:a1, :a2)),
	ARRAY[(:'att'::jsonb ->> 'seq')::bigint, (:'att'::jsonb ->> 'seq')::bigint],
	'the uploads are linked to the message');
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, 'again', NULL, ARRAY[%s]::bigint[])$$, :c, :a1), '42501', NULL,
	'an attachment already sent cannot be sent again');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, 'not mine', NULL, ARRAY[%s]::bigint[])$$, :c, :a3), '42501', NULL,
	'someone else''s upload cannot be attached');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, 'wrong chat', NULL, ARRAY[%s]::bigint[])$$, :c, :a4), '42501', NULL,
	'an upload of another chat cannot be attached');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, 'unknown', NULL, ARRAY[%s]::bigint[])$$, :c, :a4 + 1000000), '42501', NULL,
	'an unknown attachment id is refused');
SELECT is(pg_temp.fingerprint(), :'before', 'refused attachment sends stored and linked nothing');
SELECT is((SELECT message_seq FROM chat.attachments WHERE attachment_id = :a4), NULL, 'the other chat''s upload is still pending');
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
SELECT :c, 2002, 't020/ten/' || i, 'file' || i || '.txt', 'text/plain', i FROM generate_series(1, 10) i;
SELECT is(jsonb_array_length(chat.send_message(2002, :c, 'ten files', NULL,
		ARRAY(SELECT attachment_id FROM chat.attachments WHERE object_key LIKE 't020/ten/%')) -> 'attachments'), 10,
	'ten attachments are allowed');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, 'x', NULL, ARRAY[1,2,3,4,5,6,7,8,9,10,11]::bigint[])$$, :c), '22023', NULL,
	'eleven attachments are refused');
SELECT is(chat.send_message(2001, :c2, 'empty attachment list', NULL, '{}') -> 'attachments', '[]'::jsonb,
	'an empty attachment list is no attachment');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, '', NULL, '{}')$$, :c2), '22023', NULL,
	'an empty body with an empty attachment list is refused');

-- Access: a non-member and a chat that does not exist get the same refusal.
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format($$SELECT chat.send_message(2003, %s, 'let me in')$$, :c), '42501',
	'chat not found or access denied', 'a non-member cannot send');
SELECT throws_ok(format($$SELECT chat.send_message(2001, %s, 'hello?')$$, pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'sending to a chat that does not exist is the same refusal');
SELECT is((pg_temp.try(format($$SELECT chat.send_message(2003, %s, 'x')$$, :c))).message,
	(pg_temp.try(format($$SELECT chat.send_message(2001, %s, 'x')$$, pg_temp.missing_chat()))).message,
	'non-member and missing chat: identical message text');
SELECT throws_ok(format($$SELECT chat.send_message(2003, %s, 'x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')$$, :c), '42501',
	'chat not found or access denied', 'a non-member cannot probe a client_id either');
SELECT is(pg_temp.fingerprint(), :'before', 'refused sends changed nothing');

SELECT * FROM finish();
ROLLBACK;
