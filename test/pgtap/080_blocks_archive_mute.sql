-- Per-user chat state and blocking: set_archived, set_muted, block_user,
-- unblock_user, typing; the one access refusal for blocked senders,
-- non-members and missing chats. Users 8000..8099.
BEGIN;
\ir _helpers.psql
SELECT plan(61);

-- The chat ids of a user's list.
CREATE FUNCTION pg_temp.ids(u bigint, archived bool DEFAULT false) RETURNS bigint[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg((r ->> 'chat_id')::bigint ORDER BY o), '{}')
	FROM chat.list_chats(u, NULL, 1000, archived) WITH ORDINALITY AS t(r, o)
$$;

SELECT chat.open_chat(8001, 'listing', 800, 8002) AS c \gset
SELECT chat.open_chat(8001, 'direct', NULL, 8002) AS cd \gset
SELECT chat.open_chat(8001, 'direct', NULL, 8004) AS c2 \gset
SELECT lives_ok(format($$SELECT chat.send_message(8001, %s, 'first'), chat.send_message(8002, %s, 'second'),
		chat.send_message(8004, %s, 'hello'), chat.send_message(8001, %s, 'direct hello')$$, :c, :c, :c2, :cd),
	'a few messages');

-- set_archived moves a chat between the two lists, for that user only.
SELECT is(pg_temp.ids(8001, true), '{}'::bigint[], 'nothing archived at first');
SELECT lives_ok(format('SELECT chat.set_archived(8001, %s, true)', :c), '8001 archives the listing chat');
SELECT ok(NOT :c::bigint = ANY (pg_temp.ids(8001)), 'it left the main list');
SELECT is(pg_temp.ids(8001, true), ARRAY[:c]::bigint[], 'it is in the archived list');
SELECT is((SELECT r -> 'archived' FROM chat.list_chats(8001, NULL, 50, true) r), 'true'::jsonb, 'and says archived: true');
SELECT ok(:c::bigint = ANY (pg_temp.ids(8002)), 'the other member still has it in the main list');
SELECT lives_ok(format('SELECT chat.set_archived(8001, %s, true)', :c), 'archiving twice is fine');
SELECT is(pg_temp.ids(8001, true), ARRAY[:c]::bigint[], 'still archived once');
SELECT lives_ok(format($$SELECT chat.send_message(8002, %s, 'still there?')$$, :c), 'a new message arrives in the archived chat');
SELECT is(pg_temp.ids(8001, true), ARRAY[:c]::bigint[], 'a new message does not unarchive the chat');
SELECT is(chat.unread_total(8001), 3::bigint, 'an archived chat still counts in unread_total (2 unread there, 1 in the direct chat with 8004)');
SELECT lives_ok(format('SELECT chat.set_archived(8001, %s, false)', :c), 'unarchived');
SELECT ok(:c::bigint = ANY (pg_temp.ids(8001)), 'back in the main list');
SELECT is(pg_temp.ids(8001, true), '{}'::bigint[], 'the archived list is empty again');

-- set_muted flags the chat for that user.
SELECT lives_ok(format('SELECT chat.set_muted(8002, %s, true)', :c), '8002 mutes the listing chat');
SELECT is((SELECT array_agg((r ->> 'muted')::bool ORDER BY u) FROM unnest(ARRAY[8001, 8002]) u,
		chat.list_chats(u) r WHERE (r ->> 'chat_id')::bigint = :c), ARRAY[false, true], 'muted for 8002 only');
SELECT lives_ok(format('SELECT chat.set_muted(8002, %s, false)', :c), 'unmuted');

-- Refusals of set_archived / set_muted.
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format('SELECT chat.set_archived(8003, %s, true)', :c), '42501', 'chat not found or access denied',
	'a non-member cannot archive the chat');
SELECT throws_ok(format('SELECT chat.set_archived(8001, %s, true)', pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'archiving a missing chat: the same refusal');
SELECT throws_ok(format('SELECT chat.set_muted(8003, %s, true)', :c), '42501', 'chat not found or access denied',
	'a non-member cannot mute the chat');
SELECT throws_ok(format('SELECT chat.set_muted(8001, %s, true)', pg_temp.missing_chat()), '42501',
	'chat not found or access denied', 'muting a missing chat: the same refusal');
SELECT throws_ok(format('SELECT chat.set_archived(8001, %s, NULL)', :c), '22023', NULL, 'set_archived: NULL archived is refused');
SELECT throws_ok(format('SELECT chat.set_archived(NULL, %s, true)', :c), '22023', NULL, 'set_archived: NULL user_id is refused');
SELECT throws_ok('SELECT chat.set_archived(8001, NULL, true)', '22023', NULL, 'set_archived: NULL chat_id is refused');
SELECT throws_ok(format('SELECT chat.set_muted(8001, %s, NULL)', :c), '22023', NULL, 'set_muted: NULL muted is refused');
SELECT is(pg_temp.fingerprint(), :'before', 'the refused calls changed nothing');

-- typing: an event for members only, nothing stored.
SELECT lives_ok(format('SELECT chat.typing(8001, %s)', :c), 'a member may type');
SELECT is(pg_temp.fingerprint(), :'before', 'typing stores nothing');
SELECT throws_ok(format('SELECT chat.typing(8003, %s)', :c), '42501', 'chat not found or access denied',
	'a non-member cannot type');
SELECT throws_ok(format('SELECT chat.typing(8001, %s)', pg_temp.missing_chat()), '42501', 'chat not found or access denied',
	'typing in a missing chat: the same refusal');
SELECT throws_ok(format('SELECT chat.typing(NULL, %s)', :c), '22023', NULL, 'typing: NULL user_id is refused');
SELECT throws_ok('SELECT chat.typing(8001, NULL)', '22023', NULL, 'typing: NULL chat_id is refused');

-- block_user: 8002 blocks 8001. 8001 can no longer send to 8002, in any of
-- their chats, and gets exactly the refusal of a non-member.
SELECT lives_ok('SELECT chat.block_user(8002, 8001)', '8002 blocks 8001');
SELECT lives_ok('SELECT chat.block_user(8002, 8001)', 'blocking twice is fine');
SELECT is((SELECT count(*) FROM chat.blocks WHERE blocker_id = 8002 AND blocked_id = 8001), 1::bigint, 'one block');
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format($$SELECT chat.send_message(8001, %s, 'are you there?')$$, :c), '42501',
	'chat not found or access denied', 'the blocked user cannot send in the listing chat');
SELECT throws_ok(format($$SELECT chat.send_message(8001, %s, 'hello?')$$, :cd), '42501',
	'chat not found or access denied', 'nor in their direct chat');
SELECT throws_ok(format($$SELECT chat.send_message(8001, %s, 'retry', 'c1eebc99-9c0b-4ef8-bb6d-6bb9bd380a33')$$, :c), '42501',
	'chat not found or access denied', 'nor with a client_id');
SELECT throws_ok(format($$SELECT chat.edit_message(8001, %s, 1, 'rewritten')$$, :c), '42501',
	'chat not found or access denied', 'the blocked user cannot edit an own message the blocker sees');
SELECT throws_ok(format('SELECT chat.typing(8001, %s)', :c), '42501', 'chat not found or access denied',
	'the blocked user cannot send typing events');
SELECT is(pg_temp.fingerprint(), :'before', 'the refused calls stored nothing');
SELECT row_eq(format('SELECT last_seq, (SELECT count(*) FROM chat.messages WHERE chat_id = %s) FROM chat.chats WHERE chat_id = %s', :c, :c),
	ROW(3::bigint, 3::bigint), 'last_seq and message count of the listing chat unchanged');
SELECT is(
	ARRAY[(pg_temp.try(format($$SELECT chat.send_message(8001, %s, 'x')$$, :c))).message,
		(pg_temp.try(format($$SELECT chat.send_message(8003, %s, 'x')$$, :c))).message,
		(pg_temp.try(format($$SELECT chat.send_message(8001, %s, 'x')$$, pg_temp.missing_chat()))).message],
	ARRAY['chat not found or access denied', 'chat not found or access denied', 'chat not found or access denied'],
	'blocked sender, non-member and missing chat: the very same message text');
SELECT is(
	ARRAY[(pg_temp.try(format($$SELECT chat.send_message(8001, %s, 'x')$$, :c))).state,
		(pg_temp.try(format($$SELECT chat.send_message(8003, %s, 'x')$$, :c))).state,
		(pg_temp.try(format($$SELECT chat.send_message(8001, %s, 'x')$$, pg_temp.missing_chat()))).state],
	ARRAY['42501', '42501', '42501'], '... and the very same SQLSTATE');

-- The blocked user can still read and mark read.
SELECT is(pg_temp.seqs(format('chat.history(8001, %s, NULL, 2)', :c)), ARRAY[3, 2]::bigint[], 'the blocked user can read the history');
SELECT is(pg_temp.seqs(format('chat.catch_up(8001, %s, 2)', :c)), ARRAY[3]::bigint[], 'the blocked user can catch up');
SELECT ok(:c::bigint = ANY (pg_temp.ids(8001)), 'the blocked user still lists the chat');
SELECT is(chat.mark_read(8001, :c, 3) ->> 'read_seq', '3', 'the blocked user can mark read');

-- The blocker still sends; the blocked user still talks to others and may
-- delete an own message.
SELECT is(chat.send_message(8002, :c, 'I can still write') ->> 'seq', '4', 'the blocker can still send to the blocked user');
SELECT lives_ok(format($$SELECT chat.typing(8002, %s)$$, :c), 'the blocker can still type');
SELECT is(chat.send_message(8001, :c2, 'to someone else') ->> 'seq', '2', 'the blocked user can still send to others');
SELECT is(chat.delete_message(8001, :c, 1) ->> 'deleted', 'true', 'the blocked user may delete an own message');

-- unblock_user restores sending.
SELECT lives_ok('SELECT chat.unblock_user(8002, 8001)', '8002 unblocks 8001');
SELECT is(chat.send_message(8001, :c, 'thanks') ->> 'seq', '5', 'the unblocked user can send again');
SELECT lives_ok('SELECT chat.unblock_user(8002, 8001)', 'unblocking when not blocked is fine');

-- Refusals of block_user / unblock_user.
SELECT throws_ok('SELECT chat.block_user(8001, 8001)', '22023', NULL, 'blocking yourself is refused');
SELECT throws_ok('SELECT chat.unblock_user(8001, 8001)', '22023', NULL, 'unblocking yourself is refused');
SELECT throws_ok('SELECT chat.block_user(NULL, 8001)', '22023', NULL, 'block_user: NULL user_id is refused');
SELECT throws_ok('SELECT chat.block_user(8001, NULL)', '22023', NULL, 'block_user: NULL other_id is refused');
SELECT throws_ok('SELECT chat.unblock_user(8001, NULL)', '22023', NULL, 'unblock_user: NULL other_id is refused');

SELECT * FROM finish();
ROLLBACK;
