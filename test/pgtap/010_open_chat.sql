-- open_chat: get or create; listing / product chats are per buyer, seller and
-- context; a direct chat is one per pair whichever side opens it; refusals.
-- Users 1000..1099.
BEGIN;
\ir _helpers.psql
SELECT plan(40);

-- A listing chat: buyer 1001 asks seller 1002 about listing 77.
SELECT chat.open_chat(1001, 'listing', 77, 1002) AS listing \gset

SELECT cmp_ok(:listing::bigint, '>', 0::bigint, 'open_chat returns a chat id');
SELECT is(chat.open_chat(1001, 'listing', 77, 1002), :listing::bigint,
	'same arguments, same chat (get, not create)');
SELECT is((SELECT count(*) FROM chat.chats WHERE kind = 'listing' AND context_id = 77), 1::bigint,
	'the second call created nothing');
SELECT row_eq(format('SELECT kind, context_id, user_a, user_b, last_seq, last_rev FROM chat.chats WHERE chat_id = %s', :listing),
	ROW('listing'::text, 77::bigint, 1001::bigint, 1002::bigint, 0::bigint, 0::bigint),
	'listing chat stored with buyer as user_a, seller as user_b, no messages yet');
SELECT results_eq(format('SELECT user_id, role FROM chat.members WHERE chat_id = %s ORDER BY user_id', :listing),
	$$VALUES (1001::bigint, 'buyer'::text), (1002::bigint, 'seller'::text)$$,
	'the opener is the buyer, the peer the seller');
SELECT results_eq(format('SELECT read_seq, unread, archived, muted FROM chat.members WHERE chat_id = %s ORDER BY user_id', :listing),
	$$VALUES (0::bigint, 0, false, false), (0::bigint, 0, false, false)$$,
	'members start with nothing read, nothing unread, not archived, not muted');

-- Listing chats are distinct by context, by buyer and by kind.
SELECT isnt(chat.open_chat(1001, 'listing', 78, 1002), :listing::bigint,
	'another listing of the same seller is another chat');
SELECT isnt(chat.open_chat(1003, 'listing', 77, 1002), :listing::bigint,
	'another buyer of the same listing gets another chat');
SELECT isnt(chat.open_chat(1001, 'product', 77, 1002), :listing::bigint,
	'a product chat with the same context id is not the listing chat');
SELECT is(chat.open_chat(1001, 'product', 77, 1002), chat.open_chat(1001, 'product', 77, 1002),
	'product chats are get-or-create too');
SELECT results_eq(format('SELECT user_id, role FROM chat.members WHERE chat_id = %s ORDER BY user_id',
		chat.open_chat(1001, 'product', 77, 1002)),
	$$VALUES (1001::bigint, 'buyer'::text), (1002::bigint, 'seller'::text)$$,
	'product chat: the opener is the buyer, the peer the seller');
SELECT isnt(chat.open_chat(1002, 'listing', 77, 1001), :listing::bigint,
	'the roles are part of the key: the seller opening "as buyer" is a different chat');
SELECT is((SELECT count(*) FROM chat.chats WHERE user_a BETWEEN 1000 AND 1099), 5::bigint,
	'five distinct chats so far');

-- Direct chats: one per pair, symmetric.
SELECT chat.open_chat(1010, 'direct', NULL, 1011) AS direct \gset
SELECT is(chat.open_chat(1011, 'direct', NULL, 1010), :direct::bigint,
	'direct chat: the other side opening it gets the same chat');
SELECT is(chat.open_chat(1010, 'direct', NULL, 1011), :direct::bigint,
	'direct chat: the same side again gets the same chat');
SELECT row_eq(format('SELECT kind, context_id, user_a, user_b FROM chat.chats WHERE chat_id = %s', :direct),
	ROW('direct'::text, NULL::bigint, 1010::bigint, 1011::bigint),
	'direct chat stored with the lower user id first and no context');
SELECT is((SELECT count(*) FROM chat.chats WHERE kind = 'direct' AND user_a = 1010 AND user_b = 1011), 1::bigint,
	'exactly one direct chat for the pair');
SELECT results_eq(format('SELECT user_id, role FROM chat.members WHERE chat_id = %s ORDER BY user_id', :direct),
	$$VALUES (1010::bigint, 'member'::text), (1011::bigint, 'member'::text)$$,
	'both sides of a direct chat are plain members');
SELECT isnt(chat.open_chat(1010, 'direct', NULL, 1012), :direct::bigint,
	'another pair is another direct chat');

-- Invalid arguments: 22023, and nothing created.
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok($$SELECT chat.open_chat(1001, 'group', 77, 1002)$$, '22023', NULL,
	'unknown kind is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, 'Listing', 77, 1002)$$, '22023', NULL,
	'kinds are case sensitive');
SELECT throws_ok($$SELECT chat.open_chat(1001, '', 77, 1002)$$, '22023', NULL,
	'empty kind is refused');
SELECT throws_ok($$SELECT chat.open_chat(1010, 'direct', 5, 1011)$$, '22023', NULL,
	'a direct chat with a context_id is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, 'listing', NULL, 1002)$$, '22023', NULL,
	'a listing chat without context_id is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, 'product', NULL, 1002)$$, '22023', NULL,
	'a product chat without context_id is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, 'direct', NULL, 1001)$$, '22023', NULL,
	'a direct chat with yourself is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, 'listing', 77, 1001)$$, '22023', NULL,
	'a listing chat with yourself is refused');
SELECT throws_ok($$SELECT chat.open_chat(NULL, 'direct', NULL, 1002)$$, '22023', NULL,
	'NULL user_id is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, NULL, 77, 1002)$$, '22023', NULL,
	'NULL kind is refused');
SELECT throws_ok($$SELECT chat.open_chat(1001, 'direct', NULL, NULL)$$, '22023', NULL,
	'NULL peer_id is refused');
SELECT matches((pg_temp.try($$SELECT chat.open_chat(1001, 'group', 77, 1002)$$)).message, 'kind',
	'the message names what is wrong (kind)');
SELECT matches((pg_temp.try($$SELECT chat.open_chat(1001, 'listing', NULL, 1002)$$)).message, 'context_id',
	'the message names what is wrong (context_id)');
SELECT is(pg_temp.fingerprint(), :'before', 'the refused calls created or changed nothing');

-- A user the peer has blocked cannot open a new chat with them: the same
-- 42501 refusal as any access refusal. The blocker still can.
SELECT lives_ok($$SELECT chat.block_user(1021, 1020)$$, '1021 blocks 1020');
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok($$SELECT chat.open_chat(1020, 'direct', NULL, 1021)$$, '42501',
	'chat not found or access denied', 'blocked user cannot open a direct chat with the blocker');
SELECT throws_ok($$SELECT chat.open_chat(1020, 'listing', 5, 1021)$$, '42501',
	'chat not found or access denied', 'blocked user cannot open a listing chat with the blocker');
SELECT is(pg_temp.fingerprint(), :'before', 'the refused opens created nothing');
SELECT lives_ok($$SELECT chat.open_chat(1021, 'direct', NULL, 1020)$$,
	'the blocker can still open a chat with the blocked user');
SELECT lives_ok($$SELECT chat.unblock_user(1021, 1020)$$, '1021 unblocks 1020');
SELECT is(chat.open_chat(1020, 'direct', NULL, 1021), chat.open_chat(1021, 'direct', NULL, 1020),
	'after unblocking, the formerly blocked user opens the same direct chat');

SELECT * FROM finish();
ROLLBACK;
