-- send, raw SQL doing everything send_message does, one statement per round
-- trip: membership and block check under the chat row lock, the message, the
-- chat summary, both members' sort key and read state, and the event.
\set c random(1, :nchats)
\set u 1000000 + :c % :nbuyers
\set s case when :c % :every = 0 and :c / :every <= :seller_chats then 1 else 2 + :c % :nsellers end
BEGIN;
SELECT c.last_seq, EXISTS (SELECT 1 FROM chat.members o JOIN chat.blocks b
		ON b.blocker_id = o.user_id AND b.blocked_id = :u WHERE o.chat_id = c.chat_id) AS blocked
	FROM chat.chats c
	WHERE c.chat_id = :c AND EXISTS (SELECT 1 FROM chat.members m WHERE m.chat_id = :c AND m.user_id = :u)
	FOR UPDATE OF c \gset
UPDATE chat.chats SET last_seq = last_seq + 1, last_rev = last_rev + 1, last_message_at = now(),
	last_sender_id = :u, last_preview = 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.', last_deleted = false
	WHERE chat_id = :c RETURNING last_seq AS seq, last_rev AS rev \gset
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at)
	VALUES (:c, :seq, :rev, :u, 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.', now());
UPDATE chat.members SET sort_at = now(),
	unread = CASE WHEN user_id = :u THEN 0 ELSE unread + 1 END,
	read_seq = CASE WHEN user_id = :u THEN :seq ELSE read_seq END
	WHERE chat_id = :c;
SELECT pg_notify('chat_events', format('{"to":[%s,%s],"ev":{"v":1,"type":"message","chat_id":%s,"seq":%s,'
	'"cursor":%s,"sender_id":%s,"inline":%s,"message":%s}}', least(:u::bigint, :s::bigint), greatest(:u::bigint, :s::bigint), :c::bigint, :seq::bigint, :rev::bigint, :u::bigint, 'true',
	jsonb_build_object('chat_id', :c::bigint, 'seq', :seq::bigint, 'cursor', :rev::bigint,
	'sender_id', :u::bigint, 'body', 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.', 'created_at', now(), 'edited_at', NULL, 'deleted', false,
	'client_id', NULL, 'attachments', '[]'::jsonb)));
COMMIT;
