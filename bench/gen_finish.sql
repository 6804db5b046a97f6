-- Benchmark data, step 3 of 3: check that the generated data is what the API
-- would have kept, then mark it complete. VACUUM ANALYZE runs separately.
\set ON_ERROR_STOP 1
DO $$
DECLARE
	expected bigint := (SELECT sum(n) FROM bench.gen_chats);
	loaded   bigint := (SELECT count(*) FROM chat.messages);
	bad      bigint;
BEGIN
	IF loaded <> expected THEN
		RAISE EXCEPTION 'bench: % messages loaded, % expected', loaded, expected;
	END IF;
	IF (SELECT count(*) FROM chat.messages_default) <> 0 THEN
		RAISE EXCEPTION 'bench: messages landed in the default partition';
	END IF;
	-- a sample of chats: summary = last message, seq gap-free, stamps rising
	SELECT count(*) INTO bad
	FROM chat.chats c
	CROSS JOIN LATERAL (
		SELECT count(*) AS n, max(seq) AS max_seq, min(seq) AS min_seq,
			max(created_at) AS max_at, min(created_at) AS min_at,
			bool_and(rev = seq) AS rev_ok,
			(array_agg(sender_id ORDER BY seq DESC))[1] AS last_sender,
			(array_agg(body ORDER BY seq DESC))[1] AS last_body,
			bool_and(ok) AS rising
		FROM (SELECT seq, rev, sender_id, body, created_at,
				created_at > coalesce(lag(created_at) OVER (ORDER BY seq), '-infinity') AS ok
			FROM chat.messages m WHERE m.chat_id = c.chat_id) x
	) m
	WHERE c.chat_id % 97 = 0
	  AND NOT (m.n = c.last_seq AND m.max_seq = c.last_seq AND m.min_seq = 1 AND m.rev_ok AND m.rising
		AND m.max_at = c.last_message_at AND m.min_at >= c.created_at
		AND m.last_sender = c.last_sender_id AND left(m.last_body, 200) = c.last_preview
		AND c.last_rev = c.last_seq);
	IF bad <> 0 THEN
		RAISE EXCEPTION 'bench: % sampled chats disagree with their messages', bad;
	END IF;
	SELECT count(*) INTO bad
	FROM chat.members mb JOIN chat.chats c USING (chat_id)
	WHERE mb.sort_at <> c.last_message_at OR mb.unread <> c.last_seq - mb.read_seq
	   OR mb.read_seq > c.last_seq OR mb.read_seq < c.last_seq - 1;
	IF bad <> 0 THEN
		RAISE EXCEPTION 'bench: % members disagree with their chats', bad;
	END IF;
	UPDATE bench.meta SET messages_loaded = loaded, complete = true;
END
$$;
