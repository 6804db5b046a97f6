-- list_chats: the user's chats by last activity, newest first, with kind,
-- context, peers, last message preview, unread and a keyset cursor; paging
-- yields every chat exactly once; refusals. Users 6000..6099; the user
-- under test is 6000. (Archived chats: 080_blocks_archive_mute.sql.)
BEGIN;
\ir _helpers.psql
SELECT plan(44);
-- more chats than one user may open per hour by default
SET LOCAL chat.max_new_chats_per_hour = 1000;

-- The chat ids of one list_chats call, in order.
CREATE FUNCTION pg_temp.ids(u bigint, before text DEFAULT NULL, page int DEFAULT 50, archived bool DEFAULT false)
RETURNS bigint[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg((r ->> 'chat_id')::bigint ORDER BY o), '{}')
	FROM chat.list_chats(u, before, page, archived) WITH ORDINALITY AS t(r, o)
$$;

-- Walk the whole list page by page with the returned cursor.
CREATE FUNCTION pg_temp.walk_list(u bigint, page int, archived bool DEFAULT false) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[] := '{}';
	before text := NULL;
	n int;
	r jsonb;
BEGIN
	FOR i IN 1..1000 LOOP
		n := 0;
		FOR r IN SELECT x FROM chat.list_chats(u, before, page, archived) WITH ORDINALITY AS t(x, o) ORDER BY o LOOP
			ids := ids || (r ->> 'chat_id')::bigint;
			before := r ->> 'cursor';
			n := n + 1;
		END LOOP;
		EXIT WHEN n = 0;
	END LOOP;
	RETURN ids;
END
$$;

-- One row of the user's list.
CREATE FUNCTION pg_temp.row_of(u bigint, c bigint) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT r FROM chat.list_chats(u, NULL, 1000) r WHERE (r ->> 'chat_id')::bigint = c
$$;

SELECT is_empty('SELECT * FROM chat.list_chats(6099)', 'a user without chats has an empty list');

SELECT chat.open_chat(6000, 'listing', 601, 6001) AS ca \gset
SELECT chat.open_chat(6002, 'product', 602, 6000) AS cb \gset
SELECT chat.open_chat(6000, 'direct', NULL, 6003) AS cc \gset
SELECT chat.open_chat(6004, 'direct', NULL, 6000) AS cd \gset
SELECT chat.open_chat(6000, 'direct', NULL, 6005) AS ce \gset
SELECT chat.open_chat(6000, 'listing', 603, 6006) AS cf \gset
SELECT chat.open_chat(6007, 'direct', NULL, 6008) AS cg \gset

-- Chats without messages: all opened in this transaction, so they tie on
-- last activity and come by chat id, newest first. Those others opened with
-- 6000 (cB, cD) are listed from their first message on.
SELECT is(pg_temp.ids(6000), ARRAY[:cf, :ce, :cc, :ca]::bigint[],
	'chats the user opened without messages, newest chat first; others'' empty chats and other people''s chats are not listed');
SELECT is(pg_temp.row_of(6000, :ce) -> 'last_message', 'null'::jsonb, 'a chat without messages has last_message null');

-- Activity: cB, then cA, then two messages in cD, then cC.
SELECT lives_ok(format($$SELECT chat.send_message(6002, %s, 'hi B')$$, :cb), 'message in cB');
SELECT lives_ok(format($$SELECT chat.send_message(6000, %s, 'hi A')$$, :ca), 'message in cA');
SELECT lives_ok(format($$SELECT chat.send_message(6004, %s, 'hi D'), chat.send_message(6004, %s, 'hi D again')$$, :cd, :cd),
	'two messages in cD');
SELECT lives_ok(format($$SELECT chat.send_message(6003, %s, repeat('C', 300))$$, :cc), 'a 300-character message in cC');
SELECT is(pg_temp.ids(6000), ARRAY[:cc, :cd, :ca, :cb, :cf, :ce]::bigint[],
	'ordered by last activity, newest first; chats without messages last');
SELECT is((SELECT count(*) FROM chat.list_chats(6000) r
		WHERE r ?& ARRAY['chat_id', 'kind', 'context_id', 'peer_ids', 'last_message', 'unread', 'archived', 'cursor']),
	6::bigint, 'every row has chat_id, kind, context_id, peer_ids, last_message, unread, archived, cursor');

-- The rows' content.
SELECT is(jsonb_build_array(pg_temp.row_of(6000, :ca) -> 'kind', pg_temp.row_of(6000, :ca) -> 'context_id',
		pg_temp.row_of(6000, :ca) -> 'peer_ids', pg_temp.row_of(6000, :ca) -> 'unread', pg_temp.row_of(6000, :ca) -> 'archived'),
	'["listing", 601, [6001], 0, false]'::jsonb, 'listing chat: kind, context, peer, nothing unread (own message), not archived');
SELECT is((pg_temp.row_of(6000, :ca) -> 'last_message') - 'created_at',
	'{"seq": 1, "sender_id": 6000, "preview": "hi A", "deleted": false}'::jsonb,
	'listing chat: last message seq, sender, preview, not deleted');
SELECT is((pg_temp.row_of(6000, :ca) -> 'last_message' ->> 'created_at')::timestamptz,
	(SELECT created_at FROM chat.messages WHERE chat_id = :ca AND seq = 1), 'last_message.created_at is the message''s time');
SELECT is(jsonb_build_array(pg_temp.row_of(6000, :cb) -> 'kind', pg_temp.row_of(6000, :cb) -> 'context_id',
		pg_temp.row_of(6000, :cb) -> 'peer_ids', pg_temp.row_of(6000, :cb) -> 'unread'),
	'["product", 602, [6002], 1]'::jsonb, 'product chat where the user is the seller: one unread');
SELECT is(jsonb_build_array(pg_temp.row_of(6000, :cc) -> 'kind', pg_temp.row_of(6000, :cc) -> 'context_id',
		pg_temp.row_of(6000, :cc) -> 'peer_ids', pg_temp.row_of(6000, :cc) -> 'unread'),
	'["direct", null, [6003], 1]'::jsonb, 'direct chat: no context, the peer, one unread');
SELECT is(pg_temp.row_of(6000, :cc) -> 'last_message' ->> 'preview', repeat('C', 200),
	'the preview is the first 200 characters');
SELECT is(jsonb_build_array(pg_temp.row_of(6000, :cd) -> 'unread', pg_temp.row_of(6000, :cd) -> 'last_message' -> 'seq',
		pg_temp.row_of(6000, :cd) -> 'last_message' -> 'preview'),
	'[2, 2, "hi D again"]'::jsonb, 'two unread; the preview is of the last message');
SELECT is(jsonb_build_array(pg_temp.row_of(6001, :ca) -> 'peer_ids', pg_temp.row_of(6001, :ca) -> 'unread'),
	'[[6000], 1]'::jsonb, 'the peer sees the same chat from the other side');
SELECT is(jsonb_typeof(pg_temp.row_of(6000, :ca) -> 'cursor'), 'string', 'the cursor is a string');
-- The model allows more than two members (not through the API yet):
-- peer_ids lists every other member, ascending.
INSERT INTO chat.members (chat_id, user_id, role, sort_at) SELECT :ca, u, 'member', now() FROM unnest(ARRAY[6030, 6020]) u;
SELECT is(pg_temp.row_of(6000, :ca) -> 'peer_ids', '[6001, 6020, 6030]'::jsonb, 'with four members, peer_ids has the three others, ascending');
SELECT is(pg_temp.row_of(6020, :ca) -> 'peer_ids', '[6000, 6001, 6030]'::jsonb, '... from any member''s side');

-- A deleted last message shows as deleted with an empty preview.
SELECT lives_ok(format($$SELECT chat.delete_message(6004, %s, 2)$$, :cd), 'the last message of cD is deleted');
SELECT is((pg_temp.row_of(6000, :cd) -> 'last_message') - 'created_at',
	'{"seq": 2, "sender_id": 6004, "preview": "", "deleted": true}'::jsonb, 'the preview shows the deletion');

SELECT lives_ok(format($$SELECT chat.edit_message(6000, %s, 1, 'hi A (edited)')$$, :ca), 'the message of cA is edited');
SELECT is(pg_temp.ids(6000), ARRAY[:cc, :cd, :ca, :cb, :cf, :ce]::bigint[], 'edits and deletions do not reorder the list');
SELECT is(pg_temp.row_of(6000, :ca) -> 'last_message' ->> 'preview', 'hi A (edited)', 'the preview shows the edit');

-- New activity moves a chat to the top.
SELECT lives_ok(format($$SELECT chat.send_message(6000, %s, 'back to B')$$, :cb), 'a new message in cB');
SELECT is(pg_temp.ids(6000), ARRAY[:cb, :cc, :cd, :ca, :cf, :ce]::bigint[], 'cB is now first');

-- Keyset paging with the returned cursor: every chat exactly once, same order.
SELECT is(pg_temp.ids(6000, NULL, 2), ARRAY[:cb, :cc]::bigint[], 'page_size 2: the first two');
SELECT is(pg_temp.ids(6000, (SELECT r ->> 'cursor' FROM chat.list_chats(6000, NULL, 2) WITH ORDINALITY t(r, o) WHERE o = 2), 2),
	ARRAY[:cd, :ca]::bigint[], 'the cursor of the second row gives the next two');
SELECT is(pg_temp.walk_list(6000, 2), pg_temp.ids(6000), 'walking pages of 2 gives every chat once, in order');
SELECT is(pg_temp.walk_list(6000, 1), pg_temp.ids(6000), 'walking pages of 1 too');
SELECT is_empty(format('SELECT * FROM chat.list_chats(6000, %L)',
		(SELECT r ->> 'cursor' FROM chat.list_chats(6000) WITH ORDINALITY t(r, o) ORDER BY o DESC LIMIT 1)),
	'after the last row''s cursor: nothing');
-- Many chats tied on last activity (no messages) page correctly too.
SELECT is((SELECT count(chat.open_chat(6000, 'listing', 700 + i, 6050)) FROM generate_series(1, 30) i), 30::bigint,
	'30 more chats without messages');
SELECT is((SELECT count(DISTINCT x) FROM unnest(pg_temp.walk_list(6000, 7)) x), 36::bigint,
	'walking pages of 7 over 36 chats: 36 distinct chats');
SELECT is(pg_temp.walk_list(6000, 7), pg_temp.ids(6000, NULL, 1000), '... in the same order as one big page, none twice');

-- Refusals: 22023 for bad arguments.
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, 'abc')$$, '22023', NULL, 'a cursor that is not one is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, '')$$, '22023', NULL, 'an empty cursor is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, '12:34:56')$$, '22023', NULL, 'a cursor with trailing parts is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, NULL, 0)$$, '22023', NULL, 'page_size 0 is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, NULL, -1)$$, '22023', NULL, 'page_size -1 is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, NULL, 100000)$$, '22023', NULL, 'page_size 100000 is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, NULL, NULL)$$, '22023', NULL, 'page_size NULL is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(NULL)$$, '22023', NULL, 'user_id NULL is refused');
SELECT throws_ok($$SELECT * FROM chat.list_chats(6000, NULL, 50, NULL)$$, '22023', NULL, 'archived NULL is refused');

SELECT * FROM finish();
ROLLBACK;
