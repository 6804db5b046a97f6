-- open_chat refuses impossible peer ids (22023), a new chat enters the
-- peer's list only with its first message (the opener's at once), and new
-- chats per user per hour are limited (chat.max_new_chats_per_hour, 54000).
-- Users 1100..1199.
BEGIN;
\ir _helpers.psql
SELECT plan(12);

SELECT alike(pg_temp.outcome($$SELECT chat.open_chat(1101, 'direct', NULL, 0)$$), '22023: peer_id must be between 1 and 9007199254740991%',
	'peer 0 is refused with 22023');
SELECT alike(pg_temp.outcome($$SELECT chat.open_chat(1101, 'direct', NULL, -5)$$), '22023: peer_id must be between 1 and 9007199254740991%',
	'a negative peer is refused');
SELECT alike(pg_temp.outcome($$SELECT chat.open_chat(1101, 'listing', 7, 9223372036854775807)$$), '22023: peer_id must be%',
	'2^63 - 1 is refused');
SELECT alike(pg_temp.outcome($$SELECT chat.open_chat(1101, 'direct', NULL, 9007199254740992)$$), '22023: peer_id must be%',
	'2^53 is refused (a JavaScript client cannot hold it exactly)');
SELECT is(pg_temp.outcome($$SELECT chat.open_chat(1101, 'direct', NULL, 9007199254740991)$$), 'ok', '2^53 - 1 is accepted');

-- listed for the opener at once, for the peer from the first message
SELECT chat.open_chat(1101, 'direct', NULL, 1102) AS c \gset
SELECT ok(EXISTS (SELECT FROM chat.list_chats(1101) r WHERE (r ->> 'chat_id')::bigint = :c), 'the opener lists the new chat at once');
SELECT ok(NOT EXISTS (SELECT FROM chat.list_chats(1102) r WHERE (r ->> 'chat_id')::bigint = :c), 'the peer does not list an empty chat');
SELECT ok(chat.send_message(1101, :c, 'hello') IS NOT NULL, 'a first message');
SELECT ok(EXISTS (SELECT FROM chat.list_chats(1102) r WHERE (r ->> 'chat_id')::bigint = :c), 'now the peer lists it');

-- the hourly limit: 3 here; reopening is not limited
SET LOCAL chat.max_new_chats_per_hour = 3;
SELECT is(pg_temp.outcome($$SELECT chat.open_chat(1101, 'direct', NULL, 1102)$$), 'ok', 'reopening an existing chat is not counted');
SELECT is(pg_temp.outcome($$SELECT chat.open_chat(1101, 'listing', 1, 1103)$$), 'ok', 'a third new chat');
SELECT is(pg_temp.outcome($$SELECT chat.open_chat(1101, 'listing', 2, 1103)$$),
	'54000: too many new chats: at most 3 per hour (chat.max_new_chats_per_hour)',
	'the fourth new chat in an hour is refused with 54000');

SELECT * FROM finish();
ROLLBACK;
