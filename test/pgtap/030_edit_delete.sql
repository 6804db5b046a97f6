-- edit_message and delete_message: sender only, the change counter (cursor),
-- the chat summary, deleted messages, refusals. Users 3000..3099.
BEGIN;
\ir _helpers.psql
SELECT plan(49);

SELECT chat.open_chat(3001, 'listing', 300, 3002) AS c \gset
SELECT chat.send_message(3001, :c, 'one') AS m1 \gset
SELECT chat.send_message(3002, :c, 'two') AS m2 \gset
SELECT chat.send_message(3001, :c, 'three') AS m3 \gset
SELECT results_eq(format('SELECT seq, rev FROM chat.messages WHERE chat_id = %s ORDER BY seq', :c),
	$$VALUES (1::bigint, 1::bigint), (2, 2), (3, 3)$$, 'three messages, cursors 1..3');

-- Editing an older message: new body and edited_at, a new cursor; seq and
-- created_at stay; the chat's last message and everyone's unread stay.
SELECT string_agg(format('%s:%s:%s', user_id, read_seq, unread), ',' ORDER BY user_id) AS members_before
FROM chat.members WHERE chat_id = :c \gset
SELECT chat.edit_message(3001, :c, 1, 'one (edited)') AS e1 \gset
SELECT is(jsonb_build_array(:'e1'::jsonb -> 'seq', :'e1'::jsonb -> 'body', :'e1'::jsonb -> 'deleted',
		:'e1'::jsonb -> 'sender_id', :'e1'::jsonb -> 'created_at', :'e1'::jsonb -> 'cursor'),
	jsonb_build_array(1, 'one (edited)', false, 3001, :'m1'::jsonb -> 'created_at', 4),
	'edit returns the message: same seq and created_at, new body, cursor 4');
SELECT isnt(:'e1'::jsonb -> 'edited_at', 'null'::jsonb, 'edited_at is set');
SELECT cmp_ok((:'e1'::jsonb ->> 'edited_at')::timestamptz, '>=', (:'e1'::jsonb ->> 'created_at')::timestamptz,
	'edited_at is not before created_at');
SELECT row_eq(format('SELECT body, rev, deleted, edited_at IS NOT NULL FROM chat.messages WHERE chat_id = %s AND seq = 1', :c),
	ROW('one (edited)'::text, 4::bigint, false, true), 'the edit is stored');
SELECT row_eq(format('SELECT last_seq, last_rev, last_preview, last_deleted FROM chat.chats WHERE chat_id = %s', :c),
	ROW(3::bigint, 4::bigint, 'three'::text, false),
	'last_rev counts the edit; last_seq and the preview of the last message stay');
SELECT is((SELECT string_agg(format('%s:%s:%s', user_id, read_seq, unread), ',' ORDER BY user_id)
		FROM chat.members WHERE chat_id = :c), :'members_before', 'an edit changes no read state');
SELECT is((chat.edit_message(3001, :c, 1, 'one (edited twice)') ->> 'cursor')::int, 5,
	'editing again gives the next cursor');

-- Editing the last message updates the chat's preview.
SELECT is(chat.edit_message(3001, :c, 3, 'three (edited)') ->> 'body', 'three (edited)', 'edit of the last message');
SELECT is((SELECT last_preview FROM chat.chats WHERE chat_id = :c), 'three (edited)', 'the preview follows');

-- Deleting: body cleared, deleted true, the row stays with its seq.
SELECT chat.delete_message(3001, :c, 3) AS d3 \gset
SELECT is(jsonb_build_array(:'d3'::jsonb -> 'seq', :'d3'::jsonb -> 'body', :'d3'::jsonb -> 'deleted', :'d3'::jsonb -> 'cursor'),
	jsonb_build_array(3, '', true, 7), 'delete returns the message with an empty body, deleted, cursor 7');
SELECT row_eq(format('SELECT body, deleted, rev, edited_at IS NOT NULL FROM chat.messages WHERE chat_id = %s AND seq = 3', :c),
	ROW(''::text, true, 7::bigint, true), 'the stored body is cleared; edited_at is the time of deletion');
SELECT row_eq(format('SELECT last_seq, last_rev, last_preview, last_deleted FROM chat.chats WHERE chat_id = %s', :c),
	ROW(3::bigint, 7::bigint, ''::text, true), 'the chat summary shows the last message deleted');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c), 3::bigint, 'no row removed, no seq freed');

-- Deleting twice changes nothing; a deleted message cannot be edited.
SELECT pg_temp.fingerprint() AS before \gset
SELECT is(chat.delete_message(3001, :c, 3), :'d3'::jsonb, 'deleting again returns the same deleted message');
SELECT is(pg_temp.fingerprint(), :'before', 'a second delete changes nothing (no new cursor)');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 3, 'resurrect')$$, :c), '22023', NULL,
	'a deleted message cannot be edited');
SELECT matches((pg_temp.try(format($$SELECT chat.edit_message(3001, %s, 3, 'resurrect')$$, :c))).message, 'deleted',
	'the message says it is deleted');

-- Only the sender may edit or delete.
SELECT throws_ok(format($$SELECT chat.edit_message(3002, %s, 1, 'not yours')$$, :c), '42501', NULL,
	'the other member cannot edit my message');
SELECT throws_ok(format($$SELECT chat.delete_message(3002, %s, 1)$$, :c), '42501', NULL,
	'the other member cannot delete my message');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 2, 'not yours')$$, :c), '42501', NULL,
	'I cannot edit the other member''s message');
SELECT throws_ok(format($$SELECT chat.delete_message(3001, %s, 2)$$, :c), '42501', NULL,
	'I cannot delete the other member''s message');

-- Non-members and missing chats: the one access refusal.
SELECT throws_ok(format($$SELECT chat.edit_message(3003, %s, 1, 'x')$$, :c), '42501',
	'chat not found or access denied', 'a non-member cannot edit');
SELECT throws_ok(format($$SELECT chat.delete_message(3003, %s, 1)$$, :c), '42501',
	'chat not found or access denied', 'a non-member cannot delete');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 1, 'x')$$, pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'editing in a missing chat: the same refusal');
SELECT throws_ok(format($$SELECT chat.delete_message(3001, %s, 1)$$, pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'deleting in a missing chat: the same refusal');

-- Messages that do not exist, and invalid arguments: 22023.
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 4, 'x')$$, :c), '22023', NULL, 'edit of seq last_seq + 1');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 0, 'x')$$, :c), '22023', NULL, 'edit of seq 0');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, -1, 'x')$$, :c), '22023', NULL, 'edit of seq -1');
SELECT throws_ok(format($$SELECT chat.delete_message(3001, %s, 99)$$, :c), '22023', NULL, 'delete of seq 99');
SELECT throws_ok(format($$SELECT chat.delete_message(3001, %s, 0)$$, :c), '22023', NULL, 'delete of seq 0');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 1, '')$$, :c), '22023', NULL, 'edit to an empty body');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 1, E' \n\t')$$, :c), '22023', NULL, 'edit to a blank body');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 1, repeat('x', 4001))$$, :c), '22023', NULL, 'edit to an over-long body');
SELECT throws_ok(format($$SELECT chat.edit_message(NULL, %s, 1, 'x')$$, :c), '22023', NULL, 'edit: NULL user_id');
SELECT throws_ok($$SELECT chat.edit_message(3001, NULL, 1, 'x')$$, '22023', NULL, 'edit: NULL chat_id');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, NULL, 'x')$$, :c), '22023', NULL, 'edit: NULL seq');
SELECT throws_ok(format($$SELECT chat.edit_message(3001, %s, 1, NULL)$$, :c), '22023', NULL, 'edit: NULL body');
SELECT throws_ok(format($$SELECT chat.delete_message(NULL, %s, 1)$$, :c), '22023', NULL, 'delete: NULL user_id');
SELECT throws_ok($$SELECT chat.delete_message(3001, NULL, 1)$$, '22023', NULL, 'delete: NULL chat_id');
SELECT throws_ok(format($$SELECT chat.delete_message(3001, %s, NULL)$$, :c), '22023', NULL, 'delete: NULL seq');
SELECT is(pg_temp.fingerprint(), :'before', 'none of the refused edits and deletes changed anything');

-- A new message after a deleted last message clears last_deleted.
SELECT is(chat.send_message(3002, :c, 'four') ->> 'seq', '4', 'the next message is seq 4');
SELECT row_eq(format('SELECT last_seq, last_rev, last_preview, last_deleted FROM chat.chats WHERE chat_id = %s', :c),
	ROW(4::bigint, 8::bigint, 'four'::text, false), 'the summary shows the new message');

-- A deleted message shows no attachments.
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
VALUES (:c, 3002, 't030/a', 'a.png', 'image/png', 10);
SELECT attachment_id AS a1 FROM chat.attachments WHERE object_key = 't030/a' \gset
SELECT is(jsonb_array_length(chat.send_message(3002, :c, 'with file', NULL, ARRAY[:a1]::bigint[]) -> 'attachments'), 1,
	'a message with one attachment');
SELECT is(chat.delete_message(3002, :c, 5) -> 'attachments', '[]'::jsonb, 'once deleted it lists no attachments');
SELECT is((SELECT m -> 'attachments' FROM chat.history(3001, :c, NULL, 1) m), '[]'::jsonb,
	'history shows the deleted message without attachments');
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
VALUES (:c, 3002, 't030/b', 'b.png', 'image/png', 20);
SELECT attachment_id AS a2 FROM chat.attachments WHERE object_key = 't030/b' \gset
SELECT lives_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[%s]::bigint[])', :c, 'file b', :a2),
	'message 6 carries b.png');
SELECT is(chat.edit_message(3002, :c, 6, 'file b (edited)') -> 'attachments',
	jsonb_build_array(jsonb_build_object('id', :a2, 'name', 'b.png', 'content_type', 'image/png', 'size', 20)),
	'an edited message keeps its attachments');

SELECT * FROM finish();
ROLLBACK;
