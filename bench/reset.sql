-- Restore the generated state before a benchmark: drop the messages earlier
-- runs sent (all stamped after bench.meta.t1) and put the summaries of the
-- chats they touched and their members back. A no-op on fresh data.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE TEMP TABLE reset_counts AS
WITH d AS (
	DELETE FROM chat.messages WHERE created_at > (SELECT t1 FROM bench.meta) RETURNING 1
), c AS (
	UPDATE chat.chats c
	SET last_seq = s.n, last_rev = s.n, last_message_at = s.last_at, last_sender_id = s.last_sender,
		last_preview = left(bench.body(s.chat_id, s.n), 200), last_deleted = false
	FROM bench.gen_state s
	WHERE s.chat_id = c.chat_id
	  AND (c.last_seq <> s.n OR c.last_rev <> s.n OR c.last_message_at <> s.last_at)
	RETURNING 1
), m AS (
	UPDATE chat.members m
	SET sort_at = s.last_at,
		read_seq = CASE m.role WHEN 'buyer' THEN s.buyer_read ELSE s.seller_read END,
		unread = s.n - CASE m.role WHEN 'buyer' THEN s.buyer_read ELSE s.seller_read END,
		archived = false, muted = false
	FROM bench.gen_state s
	WHERE s.chat_id = m.chat_id
	  AND (m.sort_at <> s.last_at OR m.archived OR m.muted
		OR m.read_seq <> CASE m.role WHEN 'buyer' THEN s.buyer_read ELSE s.seller_read END)
	RETURNING 1
)
SELECT (SELECT count(*) FROM d) AS messages, (SELECT count(*) FROM c) AS chats,
	(SELECT count(*) FROM m) AS members;
SELECT (messages + chats + members) > 0 AS changed FROM reset_counts \gset
\if :changed
SELECT format('reset: removed %s benchmark messages, restored %s chats and %s members',
	messages, chats, members) AS reset FROM reset_counts;
\endif
