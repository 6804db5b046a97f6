-- Benchmark data, step 2 of 3: the messages of chats lo..hi (psql variables),
-- in (chat_id, seq) order so every partition's indexes grow at their right
-- edge. Stamps, senders and bodies follow bench/gen_setup.sql.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, client_id, created_at, edited_at, deleted, n_attachments)
SELECT g.chat_id, s, s,
	CASE WHEN s % 2 = 1 THEN g.buyer ELSE g.seller END,
	bench.body(g.chat_id, s),
	NULL,
	g.start_at + g.span * ((s - 1)::float8 / greatest(g.n - 1, 1)) + make_interval(secs => s / 1e6),
	NULL, false, 0
FROM bench.gen_chats g
CROSS JOIN LATERAL generate_series(1, g.n) s
WHERE g.chat_id BETWEEN :lo AND :hi
ORDER BY g.chat_id, s;
