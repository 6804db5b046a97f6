-- send, raw SQL baseline: bump the chat's counters and insert the message.
\set c random(1, :nchats)
\set u 1000000 + :c % :nbuyers
BEGIN;
UPDATE chat.chats SET last_seq = last_seq + 1, last_rev = last_rev + 1, last_message_at = now(),
	last_sender_id = :u, last_preview = 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.'
	WHERE chat_id = :c RETURNING last_seq AS seq, last_rev AS rev \gset
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at)
	VALUES (:c, :seq, :rev, :u, 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.', now());
COMMIT;
