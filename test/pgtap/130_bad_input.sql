-- Every refusal of the API in one table: NULL for each required argument,
-- bad bodies, page sizes, kinds, cursors, attachment lists, seqs (22023,
-- with a message naming what is wrong); access refusals (42501, one and the
-- same text for non-member, blocked sender and missing chat); sender-only
-- changes (42501). Each refused call must leave every row as it was.
-- Users 13000..13099.
BEGIN;
\ir _helpers.psql

-- Set-up: chat {c} of 13001 (buyer) and 13002 (seller) with three messages,
-- the third deleted; chat {cb} where 13004 has blocked 13003; a pending
-- upload {a} of 13001 in {c}. 13009 is in no chat; {x} is no chat.
SELECT chat.open_chat(13001, 'listing', 1300, 13002) AS c \gset
SELECT chat.open_chat(13003, 'direct', NULL, 13004) AS cb \gset
SELECT count(*) FROM (SELECT chat.send_message(13001, :c, 'one'), chat.send_message(13002, :c, 'two'),
	chat.send_message(13001, :c, 'three'), chat.delete_message(13001, :c, 3), chat.send_message(13003, :cb, 'hi'),
	chat.block_user(13004, 13003)) s \gset
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size)
VALUES (:c, 13001, 't130/a', 'a.png', 'image/png', 1);
SELECT attachment_id AS a FROM chat.attachments WHERE object_key = 't130/a' \gset

CREATE TEMP TABLE bad (
	ord     serial PRIMARY KEY,
	label   text NOT NULL,
	sql     text NOT NULL,	-- {c}, {cb}, {x}, {a} are replaced by the ids above
	code    text NOT NULL,
	pattern text NOT NULL	-- the error message must match this (case-insensitive regex)
);

-- NULL where a value is needed.
INSERT INTO bad (label, sql, code, pattern) VALUES
('open_chat: NULL user_id', $$SELECT chat.open_chat(NULL, 'direct', NULL, 13002)$$, '22023', 'user_id'),
('open_chat: NULL kind', $$SELECT chat.open_chat(13001, NULL, NULL, 13002)$$, '22023', 'kind'),
('open_chat: NULL peer_id', $$SELECT chat.open_chat(13001, 'direct', NULL, NULL)$$, '22023', 'peer_id'),
('send_message: NULL user_id', $$SELECT chat.send_message(NULL, {c}, 'x')$$, '22023', 'user_id'),
('send_message: NULL chat_id', $$SELECT chat.send_message(13001, NULL, 'x')$$, '22023', 'chat_id'),
('send_message: NULL body', $$SELECT chat.send_message(13001, {c}, NULL)$$, '22023', 'body'),
('edit_message: NULL user_id', $$SELECT chat.edit_message(NULL, {c}, 1, 'x')$$, '22023', 'user_id'),
('edit_message: NULL chat_id', $$SELECT chat.edit_message(13001, NULL, 1, 'x')$$, '22023', 'chat_id'),
('edit_message: NULL seq', $$SELECT chat.edit_message(13001, {c}, NULL, 'x')$$, '22023', 'seq'),
('edit_message: NULL body', $$SELECT chat.edit_message(13001, {c}, 1, NULL)$$, '22023', 'body'),
('delete_message: NULL user_id', $$SELECT chat.delete_message(NULL, {c}, 1)$$, '22023', 'user_id'),
('delete_message: NULL chat_id', $$SELECT chat.delete_message(13001, NULL, 1)$$, '22023', 'chat_id'),
('delete_message: NULL seq', $$SELECT chat.delete_message(13001, {c}, NULL)$$, '22023', 'seq'),
('history: NULL user_id', $$SELECT * FROM chat.history(NULL, {c})$$, '22023', 'user_id'),
('history: NULL chat_id', $$SELECT * FROM chat.history(13001, NULL)$$, '22023', 'chat_id'),
('history: NULL page_size', $$SELECT * FROM chat.history(13001, {c}, NULL, NULL)$$, '22023', 'page_size'),
('catch_up: NULL user_id', $$SELECT * FROM chat.catch_up(NULL, {c}, 0)$$, '22023', 'user_id'),
('catch_up: NULL chat_id', $$SELECT * FROM chat.catch_up(13001, NULL, 0)$$, '22023', 'chat_id'),
('catch_up: NULL after', $$SELECT * FROM chat.catch_up(13001, {c}, NULL)$$, '22023', 'after'),
('catch_up: NULL page_size', $$SELECT * FROM chat.catch_up(13001, {c}, 0, NULL)$$, '22023', 'page_size'),
('list_chats: NULL user_id', $$SELECT * FROM chat.list_chats(NULL)$$, '22023', 'user_id'),
('list_chats: NULL page_size', $$SELECT * FROM chat.list_chats(13001, NULL, NULL)$$, '22023', 'page_size'),
('list_chats: NULL archived', $$SELECT * FROM chat.list_chats(13001, NULL, 50, NULL)$$, '22023', 'archived'),
('mark_read: NULL user_id', $$SELECT chat.mark_read(NULL, {c}, 1)$$, '22023', 'user_id'),
('mark_read: NULL chat_id', $$SELECT chat.mark_read(13002, NULL, 1)$$, '22023', 'chat_id'),
('mark_read: NULL seq', $$SELECT chat.mark_read(13002, {c}, NULL)$$, '22023', 'seq'),
('unread_total: NULL user_id', $$SELECT chat.unread_total(NULL)$$, '22023', 'user_id'),
('set_archived: NULL user_id', $$SELECT chat.set_archived(NULL, {c}, true)$$, '22023', 'user_id'),
('set_archived: NULL chat_id', $$SELECT chat.set_archived(13001, NULL, true)$$, '22023', 'chat_id'),
('set_archived: NULL archived', $$SELECT chat.set_archived(13001, {c}, NULL)$$, '22023', 'archived'),
('set_muted: NULL user_id', $$SELECT chat.set_muted(NULL, {c}, true)$$, '22023', 'user_id'),
('set_muted: NULL chat_id', $$SELECT chat.set_muted(13001, NULL, true)$$, '22023', 'chat_id'),
('set_muted: NULL muted', $$SELECT chat.set_muted(13001, {c}, NULL)$$, '22023', 'muted'),
('block_user: NULL user_id', $$SELECT chat.block_user(NULL, 13002)$$, '22023', 'user_id'),
('block_user: NULL other_id', $$SELECT chat.block_user(13001, NULL)$$, '22023', 'other_id'),
('unblock_user: NULL user_id', $$SELECT chat.unblock_user(NULL, 13002)$$, '22023', 'user_id'),
('unblock_user: NULL other_id', $$SELECT chat.unblock_user(13001, NULL)$$, '22023', 'other_id'),
('typing: NULL user_id', $$SELECT chat.typing(NULL, {c})$$, '22023', 'user_id'),
('typing: NULL chat_id', $$SELECT chat.typing(13001, NULL)$$, '22023', 'chat_id');

-- Bodies: empty, blank, too long (characters, not bytes; chat.max_body_length).
INSERT INTO bad (label, sql, code, pattern) VALUES
('send: empty body', $$SELECT chat.send_message(13001, {c}, '')$$, '22023', 'body'),
('send: body of spaces', $$SELECT chat.send_message(13001, {c}, '    ')$$, '22023', 'body'),
('send: body of tabs and newlines', $$SELECT chat.send_message(13001, {c}, E'\t\n\r\n ')$$, '22023', 'body'),
('send: 4001 characters', $$SELECT chat.send_message(13001, {c}, repeat('x', 4001))$$, '22023', 'body'),
('send: 4001 Cyrillic characters', $$SELECT chat.send_message(13001, {c}, repeat('ы', 4001))$$, '22023', 'body'),
('send: 21 characters with chat.max_body_length 20',
	$$SELECT set_config('chat.max_body_length', '20', true), chat.send_message(13001, {c}, repeat('x', 21))$$, '22023', 'body'),
('send: empty body, empty attachment list', $$SELECT chat.send_message(13001, {c}, '', NULL, '{}')$$, '22023', 'body'),
('edit: empty body', $$SELECT chat.edit_message(13001, {c}, 1, '')$$, '22023', 'body'),
('edit: blank body', $$SELECT chat.edit_message(13001, {c}, 1, E' \n')$$, '22023', 'body'),
('edit: 4001 characters', $$SELECT chat.edit_message(13001, {c}, 1, repeat('x', 4001))$$, '22023', 'body');

-- Page sizes, cursors, seqs.
INSERT INTO bad (label, sql, code, pattern) VALUES
('history: page_size 0', $$SELECT * FROM chat.history(13001, {c}, NULL, 0)$$, '22023', 'page_size'),
('history: page_size -1', $$SELECT * FROM chat.history(13001, {c}, NULL, -1)$$, '22023', 'page_size'),
('history: page_size 1001', $$SELECT * FROM chat.history(13001, {c}, NULL, 1001)$$, '22023', 'page_size'),
('history: page_size 100000', $$SELECT * FROM chat.history(13001, {c}, NULL, 100000)$$, '22023', 'page_size'),
('history: before_seq 0', $$SELECT * FROM chat.history(13001, {c}, 0)$$, '22023', 'before_seq'),
('history: before_seq -1', $$SELECT * FROM chat.history(13001, {c}, -1)$$, '22023', 'before_seq'),
('catch_up: page_size 0', $$SELECT * FROM chat.catch_up(13001, {c}, 0, 0)$$, '22023', 'page_size'),
('catch_up: page_size -1', $$SELECT * FROM chat.catch_up(13001, {c}, 0, -1)$$, '22023', 'page_size'),
('catch_up: page_size 100000', $$SELECT * FROM chat.catch_up(13001, {c}, 0, 100000)$$, '22023', 'page_size'),
('catch_up: after -1', $$SELECT * FROM chat.catch_up(13001, {c}, -1)$$, '22023', 'after'),
('list_chats: page_size 0', $$SELECT * FROM chat.list_chats(13001, NULL, 0)$$, '22023', 'page_size'),
('list_chats: page_size -1', $$SELECT * FROM chat.list_chats(13001, NULL, -1)$$, '22023', 'page_size'),
('list_chats: page_size 100000', $$SELECT * FROM chat.list_chats(13001, NULL, 100000)$$, '22023', 'page_size'),
('list_chats: cursor "abc"', $$SELECT * FROM chat.list_chats(13001, 'abc')$$, '22023', 'before|cursor'),
('list_chats: empty cursor', $$SELECT * FROM chat.list_chats(13001, '')$$, '22023', 'before|cursor'),
('list_chats: cursor "1:"', $$SELECT * FROM chat.list_chats(13001, '1:')$$, '22023', 'before|cursor'),
('list_chats: cursor ":1"', $$SELECT * FROM chat.list_chats(13001, ':1')$$, '22023', 'before|cursor'),
('list_chats: cursor "1:2:3"', $$SELECT * FROM chat.list_chats(13001, '1:2:3')$$, '22023', 'before|cursor'),
('list_chats: cursor "1:2x"', $$SELECT * FROM chat.list_chats(13001, '1:2x')$$, '22023', 'before|cursor'),
('list_chats: cursor "1.5:2"', $$SELECT * FROM chat.list_chats(13001, '1.5:2')$$, '22023', 'before|cursor'),
('list_chats: cursor with an out-of-range number', $$SELECT * FROM chat.list_chats(13001, '99999999999999999999:1')$$, '22023', 'before|cursor'),
('mark_read: seq -1', $$SELECT chat.mark_read(13002, {c}, -1)$$, '22023', 'seq');

-- Kinds and parties of open_chat.
INSERT INTO bad (label, sql, code, pattern) VALUES
('open_chat: unknown kind', $$SELECT chat.open_chat(13001, 'group', 1, 13002)$$, '22023', 'kind'),
('open_chat: empty kind', $$SELECT chat.open_chat(13001, '', 1, 13002)$$, '22023', 'kind'),
('open_chat: kind in capitals', $$SELECT chat.open_chat(13001, 'DIRECT', NULL, 13002)$$, '22023', 'kind'),
('open_chat: direct with yourself', $$SELECT chat.open_chat(13001, 'direct', NULL, 13001)$$, '22023', 'yourself'),
('open_chat: listing with yourself', $$SELECT chat.open_chat(13001, 'listing', 1, 13001)$$, '22023', 'yourself'),
('open_chat: direct with context_id', $$SELECT chat.open_chat(13001, 'direct', 1, 13002)$$, '22023', 'context_id'),
('open_chat: listing without context_id', $$SELECT chat.open_chat(13001, 'listing', NULL, 13002)$$, '22023', 'context_id'),
('open_chat: product without context_id', $$SELECT chat.open_chat(13001, 'product', NULL, 13002)$$, '22023', 'context_id');

-- attachment_ids.
INSERT INTO bad (label, sql, code, pattern) VALUES
('send: 11 attachment ids', $$SELECT chat.send_message(13001, {c}, 'x', NULL, ARRAY[{a},2,3,4,5,6,7,8,9,10,11]::bigint[])$$, '22023', 'attachment'),
('send: a NULL attachment id', $$SELECT chat.send_message(13001, {c}, 'x', NULL, ARRAY[{a}, NULL]::bigint[])$$, '22023', 'attachment'),
('send: a duplicate attachment id', $$SELECT chat.send_message(13001, {c}, 'x', NULL, ARRAY[{a}, {a}]::bigint[])$$, '22023', 'attachment'),
('send: a 2-D attachment array', $$SELECT chat.send_message(13001, {c}, 'x', NULL, ARRAY[[{a}, 2], [3, 4]]::bigint[])$$, '22023', 'attachment'),
('send: someone else''s attachment', $$SELECT chat.send_message(13002, {c}, 'x', NULL, ARRAY[{a}]::bigint[])$$, '42501', 'access denied');

-- Messages that do not exist, deleted ones, other people's.
INSERT INTO bad (label, sql, code, pattern) VALUES
('edit: seq 0', $$SELECT chat.edit_message(13001, {c}, 0, 'x')$$, '22023', 'exist'),
('edit: seq -1', $$SELECT chat.edit_message(13001, {c}, -1, 'x')$$, '22023', 'exist'),
('edit: seq past the end', $$SELECT chat.edit_message(13001, {c}, 99, 'x')$$, '22023', 'exist'),
('delete: seq 0', $$SELECT chat.delete_message(13001, {c}, 0)$$, '22023', 'exist'),
('delete: seq past the end', $$SELECT chat.delete_message(13001, {c}, 99)$$, '22023', 'exist'),
('edit: a deleted message', $$SELECT chat.edit_message(13001, {c}, 3, 'x')$$, '22023', 'deleted'),
('edit: someone else''s message', $$SELECT chat.edit_message(13002, {c}, 1, 'x')$$, '42501', 'sender'),
('delete: someone else''s message', $$SELECT chat.delete_message(13001, {c}, 2)$$, '42501', 'sender'),
('block yourself', $$SELECT chat.block_user(13001, 13001)$$, '22023', 'yourself'),
('unblock yourself', $$SELECT chat.unblock_user(13001, 13001)$$, '22023', 'yourself');

-- Access: non-member, missing chat, blocked sender. The same code and the
-- very same words, so chat ids cannot be probed.
INSERT INTO bad (label, sql, code, pattern) VALUES
('access: non-member send', $$SELECT chat.send_message(13009, {c}, 'x')$$, '42501', '^chat not found or access denied$'),
('access: non-member edit', $$SELECT chat.edit_message(13009, {c}, 1, 'x')$$, '42501', '^chat not found or access denied$'),
('access: non-member delete', $$SELECT chat.delete_message(13009, {c}, 1)$$, '42501', '^chat not found or access denied$'),
('access: non-member history', $$SELECT * FROM chat.history(13009, {c})$$, '42501', '^chat not found or access denied$'),
('access: non-member catch_up', $$SELECT * FROM chat.catch_up(13009, {c}, 0)$$, '42501', '^chat not found or access denied$'),
('access: non-member mark_read', $$SELECT chat.mark_read(13009, {c}, 1)$$, '42501', '^chat not found or access denied$'),
('access: non-member set_archived', $$SELECT chat.set_archived(13009, {c}, true)$$, '42501', '^chat not found or access denied$'),
('access: non-member set_muted', $$SELECT chat.set_muted(13009, {c}, true)$$, '42501', '^chat not found or access denied$'),
('access: non-member typing', $$SELECT chat.typing(13009, {c})$$, '42501', '^chat not found or access denied$'),
('access: missing chat send', $$SELECT chat.send_message(13001, {x}, 'x')$$, '42501', '^chat not found or access denied$'),
('access: missing chat edit', $$SELECT chat.edit_message(13001, {x}, 1, 'x')$$, '42501', '^chat not found or access denied$'),
('access: missing chat delete', $$SELECT chat.delete_message(13001, {x}, 1)$$, '42501', '^chat not found or access denied$'),
('access: missing chat history', $$SELECT * FROM chat.history(13001, {x})$$, '42501', '^chat not found or access denied$'),
('access: missing chat catch_up', $$SELECT * FROM chat.catch_up(13001, {x}, 0)$$, '42501', '^chat not found or access denied$'),
('access: missing chat mark_read', $$SELECT chat.mark_read(13001, {x}, 1)$$, '42501', '^chat not found or access denied$'),
('access: missing chat set_archived', $$SELECT chat.set_archived(13001, {x}, true)$$, '42501', '^chat not found or access denied$'),
('access: missing chat set_muted', $$SELECT chat.set_muted(13001, {x}, true)$$, '42501', '^chat not found or access denied$'),
('access: missing chat typing', $$SELECT chat.typing(13001, {x})$$, '42501', '^chat not found or access denied$'),
('access: blocked sender send', $$SELECT chat.send_message(13003, {cb}, 'x')$$, '42501', '^chat not found or access denied$'),
('access: blocked sender send with client_id', $$SELECT chat.send_message(13003, {cb}, 'x', gen_random_uuid())$$, '42501', '^chat not found or access denied$'),
('access: blocked sender edit', $$SELECT chat.edit_message(13003, {cb}, 1, 'x')$$, '42501', '^chat not found or access denied$'),
('access: blocked sender typing', $$SELECT chat.typing(13003, {cb})$$, '42501', '^chat not found or access denied$'),
('access: blocked user opens a new chat', $$SELECT chat.open_chat(13003, 'listing', 1301, 13004)$$, '42501', '^chat not found or access denied$');

-- Run every row: SQLSTATE, message and "nothing changed" (the digest of all
-- rows before and after the call) in one line per refusal.
CREATE TEMP TABLE outcomes (ord int, label text, state text, message text);
CREATE FUNCTION pg_temp.run_bad(c bigint, cb bigint, x bigint, a bigint) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	b record;
	r record;
	before text;
	after text;
BEGIN
	FOR b IN SELECT * FROM bad ORDER BY ord LOOP
		before := pg_temp.fingerprint();
		r := pg_temp.try(replace(replace(replace(replace(b.sql, '{cb}', cb::text), '{c}', c::text), '{x}', x::text), '{a}', a::text));
		after := pg_temp.fingerprint();
		INSERT INTO outcomes VALUES (b.ord, b.label, r.state, r.message);
		RETURN NEXT is(
			r.state || CASE WHEN r.message ~* b.pattern THEN ', message ok' ELSE ', message: ' || r.message END
				|| CASE WHEN after = before THEN ', nothing changed' ELSE ', ROWS CHANGED' END,
			b.code || ', message ok, nothing changed',
			b.label);
	END LOOP;
END
$$;

SELECT plan((SELECT count(*)::int FROM bad) + 7);
SELECT pg_temp.fingerprint() AS before \gset
SELECT * FROM pg_temp.run_bad(:c, :cb, pg_temp.missing_chat(), :a);

-- The access refusals share one SQLSTATE and one text.
SELECT is(ARRAY(SELECT DISTINCT state FROM outcomes WHERE label LIKE 'access:%'), ARRAY['42501'],
	'every access refusal is 42501');
SELECT is(ARRAY(SELECT DISTINCT message FROM outcomes WHERE label LIKE 'access:%'), ARRAY['chat not found or access denied'],
	'every access refusal has exactly the same text');
SELECT is((SELECT message FROM outcomes WHERE label = 'access: non-member send'),
	(SELECT message FROM outcomes WHERE label = 'access: missing chat send'),
	'non-member and missing chat: equal texts');
SELECT is((SELECT message FROM outcomes WHERE label = 'access: blocked sender send'),
	(SELECT message FROM outcomes WHERE label = 'access: missing chat send'),
	'blocked sender and missing chat: equal texts');

-- Nothing changed: the chats' messages and counters are as set up.
SELECT is(pg_temp.fingerprint(), :'before', 'no row of the chat schema changed');
SELECT row_eq(format('SELECT last_seq, last_rev, (SELECT count(*) FROM chat.messages WHERE chat_id = %s) FROM chat.chats WHERE chat_id = %s', :c, :c),
	ROW(3::bigint, 4::bigint, 3::bigint), 'chat {c}: last_seq 3, last_rev 4, three messages');
SELECT is((SELECT count(*) FROM chat.chats WHERE user_a BETWEEN 13000 AND 13099), 2::bigint, 'no chat was created');

SELECT * FROM finish();
ROLLBACK;
