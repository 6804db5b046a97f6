-- Read state: unread counters kept by sends, mark_read (forward only,
-- clamped to the last message), unread_total (muted chats left out),
-- refusals. Users 7000..7099.
BEGIN;
\ir _helpers.psql
SELECT plan(41);

-- read_seq and unread of one member.
CREATE FUNCTION pg_temp.state(c bigint, u bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT format('read_seq %s, unread %s', read_seq, unread) FROM chat.members WHERE chat_id = c AND user_id = u
$$;

SELECT is(chat.unread_total(7099), 0::bigint, 'a user without chats has nothing unread');

SELECT chat.open_chat(7001, 'listing', 700, 7002) AS c \gset
SELECT chat.open_chat(7001, 'listing', 701, 7002) AS c2 \gset
SELECT is(chat.unread_total(7002), 0::bigint, 'new chats: nothing unread');

-- Sends: the recipient's unread grows, the sender has read up to the own message.
SELECT is((SELECT count(*) FROM (SELECT chat.send_message(7001, :c, 'm' || i) FROM generate_series(1, 5) i) s), 5::bigint,
	'7001 sends five messages');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 0, unread 5', 'the recipient has five unread');
SELECT is(pg_temp.state(:c, 7001), 'read_seq 5, unread 0', 'the sender has read them all');
SELECT is(chat.unread_total(7002), 5::bigint, 'unread_total counts them');

-- mark_read moves forward only.
SELECT is(chat.mark_read(7002, :c, 3), jsonb_build_object('chat_id', :c::bigint, 'user_id', 7002, 'read_seq', 3, 'unread', 2),
	'mark_read to 3 returns the new read state: 2 unread');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 3, unread 2', 'and stores it');
SELECT is((chat.mark_read(7002, :c, 1) ->> 'read_seq')::int, 3, 'mark_read backwards keeps read_seq 3');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 3, unread 2', 'nothing moved back');
SELECT is((chat.mark_read(7002, :c, 0) ->> 'unread')::int, 2, 'mark_read to 0 changes nothing either');
SELECT is(chat.mark_read(7002, :c, 3), jsonb_build_object('chat_id', :c::bigint, 'user_id', 7002, 'read_seq', 3, 'unread', 2),
	'mark_read to the current position is a no-op');
SELECT is(pg_temp.state(:c, 7001), 'read_seq 5, unread 0', 'the other member''s state is untouched');

-- ... and is clamped to the last message.
SELECT is(chat.mark_read(7002, :c, 1000), jsonb_build_object('chat_id', :c::bigint, 'user_id', 7002, 'read_seq', 5, 'unread', 0),
	'mark_read past the end stops at last_seq');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 5, unread 0', 'read_seq is 5, not 1000');
SELECT is((chat.send_message(7001, :c, 'm6') ->> 'seq')::int, 6, 'a later message gets seq 6');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 5, unread 1', 'and counts as unread: the cursor had not run ahead');

-- Answering reads the chat; the other side's unread grows.
SELECT is((chat.send_message(7002, :c, 'answer') ->> 'seq')::int, 7, 'the recipient answers (seq 7)');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 7, unread 0', 'answering reads everything up to the answer');
SELECT is(pg_temp.state(:c, 7001), 'read_seq 6, unread 1', 'the first sender now has one unread');
SELECT is((SELECT r ->> 'unread' FROM chat.list_chats(7001) r WHERE (r ->> 'chat_id')::bigint = :c), '1',
	'list_chats shows the same unread');

-- Reading part of several new messages.
SELECT is((SELECT count(*) FROM (SELECT chat.send_message(7001, :c, 'n' || i) FROM generate_series(1, 3) i) s), 3::bigint,
	'three more messages (8, 9, 10)');
SELECT is((chat.mark_read(7002, :c, 9) ->> 'unread')::int, 1, 'reading up to 9 leaves one unread');

-- Deleting an unread message does not lower unread.
SELECT lives_ok(format('SELECT chat.delete_message(7001, %s, 10)', :c), 'the unread message 10 is deleted');
SELECT is(pg_temp.state(:c, 7002), 'read_seq 9, unread 1', 'unread is unchanged by the deletion');

-- unread_total sums the chats, leaving muted ones out.
SELECT is((SELECT count(*) FROM (SELECT chat.send_message(7001, :c2, 'x' || i) FROM generate_series(1, 4) i) s), 4::bigint,
	'four messages in the second chat');
SELECT is(chat.unread_total(7002), 5::bigint, 'unread_total is 1 + 4');
SELECT lives_ok(format('SELECT chat.set_muted(7002, %s, true)', :c2), 'the second chat is muted');
SELECT is(chat.unread_total(7002), 1::bigint, 'a muted chat does not count in unread_total');
SELECT is((SELECT r ->> 'unread' FROM chat.list_chats(7002) r WHERE (r ->> 'chat_id')::bigint = :c2), '4',
	'the muted chat still shows its own unread count');
SELECT is((SELECT array_agg((r ->> 'muted')::bool ORDER BY u) FROM unnest(ARRAY[7001, 7002]) u,
		chat.list_chats(u) r WHERE (r ->> 'chat_id')::bigint = :c2), ARRAY[false, true],
	'muting is per user: muted for 7002 only');
SELECT lives_ok(format('SELECT chat.set_muted(7002, %s, false)', :c2), 'unmuted');
SELECT is(chat.unread_total(7002), 5::bigint, 'unmuted, it counts again');

-- Refusals.
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format('SELECT chat.mark_read(7003, %s, 1)', :c), '42501', 'chat not found or access denied',
	'a non-member cannot mark read');
SELECT throws_ok(format('SELECT chat.mark_read(7002, %s, 1)', pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'a missing chat: the same refusal');
SELECT is(pg_temp.outcome(format('SELECT chat.mark_read(7002, %s, -1)', :c)) ~ '^22023: .*seq', true,
	'a negative seq is refused with 22023 naming seq');
SELECT throws_ok(format('SELECT chat.mark_read(NULL, %s, 1)', :c), '22023', NULL, 'mark_read: NULL user_id is refused');
SELECT throws_ok('SELECT chat.mark_read(7002, NULL, 1)', '22023', NULL, 'mark_read: NULL chat_id is refused');
SELECT throws_ok(format('SELECT chat.mark_read(7002, %s, NULL)', :c), '22023', NULL, 'mark_read: NULL seq is refused');
SELECT throws_ok('SELECT chat.unread_total(NULL)', '22023', NULL, 'unread_total: NULL user_id is refused');
SELECT is(pg_temp.fingerprint(), :'before', 'the refused calls changed nothing');
SELECT * FROM finish();
ROLLBACK;
