-- list_chats, raw SQL reference: the query list_chats runs, rows not turned into JSON.
SELECT m.chat_id, m.sort_at, m.unread, m.archived, m.muted, m.read_seq,
	c.kind, c.context_id, c.last_seq, c.last_message_at, c.last_sender_id,
	c.last_preview, c.last_deleted,
	ARRAY(SELECT o.user_id FROM chat.members o
		WHERE o.chat_id = m.chat_id AND o.user_id <> 1 ORDER BY o.user_id)
FROM chat.members m JOIN chat.chats c ON c.chat_id = m.chat_id
WHERE m.user_id = 1 AND m.archived = false AND (m.sort_at, m.chat_id) < ('infinity', 9223372036854775807)
ORDER BY m.sort_at DESC, m.chat_id DESC LIMIT 50;
