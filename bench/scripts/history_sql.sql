-- history, raw SQL baseline: the same rows by an index scan of the partitioned parent.
\set c random(1, :nchats)
SELECT * FROM chat.messages WHERE chat_id = :c ORDER BY seq DESC LIMIT 50;
