-- A retried send (same client_id) leaves the chat exactly as it was: the
-- send path takes the next seq under the chat lock before it can know the
-- send is a retry, and must give it back. Users 2100..2199.
BEGIN;
\ir _helpers.psql
SELECT plan(8);

SELECT chat.open_chat(2101, 'direct', NULL, 2102) AS c \gset

-- retry of the latest message
SELECT chat.send_message(2101, :c, 'first', '00000000-0000-4000-8000-000000002101') AS m1 \gset
CREATE TEMP TABLE before AS SELECT last_seq, last_rev, last_message_at, last_sender_id, last_preview, last_deleted FROM chat.chats WHERE chat_id = :c;
CREATE TEMP TABLE members_before AS SELECT user_id, read_seq, unread, sort_at FROM chat.members WHERE chat_id = :c;
SELECT is(chat.send_message(2101, :c, 'first, sent again', '00000000-0000-4000-8000-000000002101'), :'m1'::jsonb,
	'a retry of the only message returns it');
SELECT results_eq(format('SELECT last_seq, last_rev, last_message_at, last_sender_id, last_preview, last_deleted FROM chat.chats WHERE chat_id = %s', :c),
	'SELECT * FROM before', 'the chat summary is unchanged by the retry');
SELECT results_eq(format('SELECT user_id, read_seq, unread, sort_at FROM chat.members WHERE chat_id = %s ORDER BY user_id', :c),
	'SELECT * FROM members_before ORDER BY user_id', 'the members are unchanged by the retry');

-- retry of an older message after the latest one was edited, then deleted
SELECT chat.send_message(2102, :c, 'second') AS m2 \gset
SELECT chat.edit_message(2102, :c, 2, 'second, edited') IS NOT NULL AS edited \gset
SELECT chat.delete_message(2102, :c, 2) IS NOT NULL AS deleted \gset
DROP TABLE before;
CREATE TEMP TABLE before AS SELECT last_seq, last_rev, last_message_at, last_sender_id, last_preview, last_deleted FROM chat.chats WHERE chat_id = :c;
SELECT is((chat.send_message(2101, :c, 'again', '00000000-0000-4000-8000-000000002101') ->> 'seq')::int, 1,
	'a retry of an older message returns that message');
SELECT results_eq(format('SELECT last_seq, last_rev, last_message_at, last_sender_id, last_preview, last_deleted FROM chat.chats WHERE chat_id = %s', :c),
	'SELECT * FROM before', 'the summary still describes the deleted latest message');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c), 2::bigint, 'nothing new is stored');

-- the next real send continues without a gap
SELECT is((chat.send_message(2101, :c, 'third') ->> 'seq')::int, 3, 'the next send takes seq 3');
-- revs: 1 first, 2 second, 3 edit, 4 delete, 5 third; the retries took none
SELECT is((chat.send_message(2101, :c, 'fourth', '00000000-0000-4000-8000-000000002199') ->> 'cursor')::int,
	6, 'cursors continue from the chat''s counter');

SELECT * FROM finish();
ROLLBACK;
