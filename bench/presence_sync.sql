-- bench/presence_sync.sh's data: users 1..:users; every tenth shares a
-- direct chat with a user of its own (10,000,000 + id), so a sync of every
-- user publishes :users / 10 presence events (they fit the 4 MB event
-- queue). Members are inserted directly: open_chat would take minutes.
INSERT INTO chat.chats (kind, user_a, user_b)
	SELECT 'direct', g, 10000000 + g FROM generate_series(10, :users, 10) g;
INSERT INTO chat.members (chat_id, user_id, role, sort_at)
	SELECT chat_id, user_a, 'member', created_at FROM chat.chats
	UNION ALL SELECT chat_id, user_b, 'member', created_at FROM chat.chats;
VACUUM ANALYZE;
