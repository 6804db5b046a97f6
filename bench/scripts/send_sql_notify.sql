-- send, raw SQL baseline plus a pg_notify of an event of the same shape and
-- size as the extension's (message inline) in the same transaction.
-- ("inline":%s takes 'true' as an argument: pgbench would read :true as a variable)
\set c random(1, :nchats)
\set u 1000000 + :c % :nbuyers
\set s case when :c % :every = 0 and :c / :every <= :seller_chats then 1 else 2 + :c % :nsellers end
BEGIN;
UPDATE chat.chats SET last_seq = last_seq + 1, last_rev = last_rev + 1, last_message_at = now(),
	last_sender_id = :u, last_preview = 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.'
	WHERE chat_id = :c RETURNING last_seq AS seq, last_rev AS rev \gset
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at)
	VALUES (:c, :seq, :rev, :u, 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.', now());
SELECT pg_notify('chat_events', format('{"to":[%s,%s],"ev":{"v":1,"type":"message","chat_id":%s,"seq":%s,'
	'"cursor":%s,"sender_id":%s,"inline":%s,"message":%s}}', least(:u::bigint, :s::bigint), greatest(:u::bigint, :s::bigint), :c::bigint, :seq::bigint, :rev::bigint, :u::bigint, 'true',
	jsonb_build_object('chat_id', :c::bigint, 'seq', :seq::bigint, 'cursor', :rev::bigint,
	'sender_id', :u::bigint, 'body', 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.', 'created_at', now(), 'edited_at', NULL, 'deleted', false,
	'client_id', NULL, 'attachments', '[]'::jsonb)));
COMMIT;
