-- bench/presence_sync.sh's data: users 1..:users; every tenth shares a
-- direct chat with a user of its own (10,000,000 + id) in which both wrote,
-- a contact, so a sync of every user publishes :users / 10 presence events
-- (they fit the 4 MB event queue). Members and contacts are inserted
-- directly: open_chat and send_message would take minutes.
INSERT INTO chat.chats (kind, user_a, user_b)
	SELECT 'direct', g, 10000000 + g FROM generate_series(10, :users, 10) g;
INSERT INTO chat.members (chat_id, user_id, role, sort_at, sent)
	SELECT chat_id, user_a, 'member', created_at, true FROM chat.chats
	UNION ALL SELECT chat_id, user_b, 'member', created_at, true FROM chat.chats;
INSERT INTO chat.contacts (user_id, peer_id)
	SELECT user_a, user_b FROM chat.chats UNION ALL SELECT user_b, user_a FROM chat.chats;
VACUUM ANALYZE;
