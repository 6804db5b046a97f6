-- Several sessions writing one chat at once: seq is exactly 1..N with no
-- gaps and in created_at order, each session's messages keep their order,
-- the change counter counts every send and edit, the chat summary and the
-- unread counters are right, events arrive in seq order; concurrent
-- open_chat calls of one pair agree on one chat; forced races (a second
-- call waiting on the first one's open transaction) for idempotent sends,
-- rolled-back sends, open_chat, and REPEATABLE READ callers.
--
-- Sessions are dblink connections; each runs a DO block that commits after
-- every call, so the sessions' transactions interleave:
--   s1, s2  user 10000 sends 100 messages each
--   s3, s4  user 10001 sends 100 messages each
--   e       user 10001 sends 50 messages and edits each right after
--   r       user 10000 marks the chat read (to the end) 100 times
-- 'listener' runs LISTEN chat_events. Users 10000..10099; the committed
-- rows are deleted at the end.
BEGIN;
\ir _helpers.psql
SELECT plan(67);

-- Wait until a connection's query has finished; the first column of its
-- result (or its command status).
CREATE FUNCTION pg_temp.wait(conn text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	status text;
BEGIN
	SELECT string_agg(r, ',') INTO status FROM dblink_get_result(conn, false) AS t(r text);
	PERFORM * FROM dblink_get_result(conn, false) AS t(r text);	-- the end of the results
	RETURN status;
END
$$;

-- Wait (up to 30 s) until backend `pid` is blocked by another one.
CREATE FUNCTION pg_temp.wait_blocked(pid int) RETURNS bool
LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
	LOOP
		IF cardinality(pg_blocking_pids(pid)) > 0 THEN
			RETURN true;
		END IF;
		IF clock_timestamp() > deadline THEN
			RETURN false;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
$$;

-- Run SQL on the setup connection (committed on return).
CREATE FUNCTION pg_temp.remote(sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink('setup', sql) AS t(r text) $$;

SELECT is(dblink_connect('setup', pg_temp.connstr()), 'OK', 'setup connection');
SELECT is(pg_temp.remote($$DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 10000 AND 10099);
		DELETE FROM chat.chats WHERE user_a BETWEEN 10000 AND 10099$$) ~ '^DELETE', true, 'no leftovers of users 10000..10099');
SELECT pg_temp.remote($$SELECT chat.open_chat(10000, 'direct', NULL, 10001)$$) AS c \gset
SELECT is(dblink_connect('listener', pg_temp.connstr()), 'OK', 'listener connection');
SELECT is(dblink_exec('listener', 'LISTEN chat_events'), 'LISTEN', 'listener listens');
SELECT is(array_agg(dblink_connect(conn, pg_temp.connstr()) ORDER BY conn), ARRAY['OK', 'OK', 'OK', 'OK', 'OK', 'OK'],
	'six writer connections')
FROM unnest(ARRAY['s1', 's2', 's3', 's4', 'e', 'r']) conn;

-- Start every session, then wait for all of them.
SELECT is(array_agg(dblink_send_query('s' || i, format(
		$q$DO $$BEGIN FOR k IN 1..100 LOOP PERFORM chat.send_message(%s, %s, 'session %s #' || k); COMMIT; END LOOP; END$$$q$,
		CASE WHEN i <= 2 THEN 10000 ELSE 10001 END, :c, i)) ORDER BY i), ARRAY[1, 1, 1, 1],
	's1..s4 start sending')
FROM generate_series(1, 4) i;
SELECT is(dblink_send_query('e', format(
		$q$DO $$DECLARE m jsonb; BEGIN FOR k IN 1..50 LOOP
			m := chat.send_message(10001, %s, 'editor #' || k); COMMIT;
			PERFORM chat.edit_message(10001, %s, (m ->> 'seq')::bigint, 'editor #' || k || ' edited'); COMMIT;
		END LOOP; END$$$q$, :c, :c)), 1, 'e starts sending and editing');
SELECT is(dblink_send_query('r', format(
		$q$DO $$BEGIN FOR k IN 1..100 LOOP PERFORM chat.mark_read(10000, %s, 1000000); COMMIT; END LOOP; END$$$q$, :c)), 1,
	'r starts marking read');
SELECT is(array_agg(pg_temp.wait(conn) ORDER BY conn), ARRAY['DO', 'DO', 'DO', 'DO', 'DO', 'DO'],
	'every session finished without error')
FROM unnest(ARRAY['e', 'r', 's1', 's2', 's3', 's4']) conn;

-- seq: exactly 1..450, no gap, no duplicate; created_at rises with seq.
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c), 450::bigint, '450 messages stored');
SELECT is(ARRAY(SELECT seq FROM chat.messages WHERE chat_id = :c ORDER BY seq), ARRAY(SELECT generate_series(1, 450))::bigint[],
	'seq is exactly 1..450');
SELECT is_empty(format('SELECT seq FROM (SELECT seq, created_at, lag(created_at) OVER (ORDER BY seq) AS prev
		FROM chat.messages WHERE chat_id = %s) s WHERE created_at < prev', :c),
	'seq order is created_at order');
SELECT is(ARRAY(SELECT seq FROM chat.messages WHERE chat_id = :c ORDER BY created_at, seq),
	ARRAY(SELECT seq FROM chat.messages WHERE chat_id = :c ORDER BY seq), 'ordering by created_at gives seq order');

-- Each session's messages are in its own sending order.
SELECT is_empty(format($$SELECT seq FROM (SELECT seq, split_part(body, ' #', 2)::int AS k,
			lag(split_part(body, ' #', 2)::int) OVER (PARTITION BY split_part(body, ' #', 1) ORDER BY seq) AS prev_k
		FROM chat.messages WHERE chat_id = %s AND body LIKE 'session %%') s WHERE k <= prev_k$$, :c),
	'every session''s messages are in its sending order');
SELECT is(ARRAY(SELECT count(*) FROM chat.messages WHERE chat_id = :c GROUP BY split_part(body, ' #', 1) ORDER BY 1),
	ARRAY[50, 100, 100, 100, 100]::bigint[], '100 messages of each sending session and 50 of the editor');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c AND body LIKE 'editor #% edited' AND edited_at IS NOT NULL),
	50::bigint, 'the editor''s 50 messages are edited');

-- The change counter: 450 sends + 50 edits; each message at its last change.
SELECT row_eq(format('SELECT last_seq, last_rev FROM chat.chats WHERE chat_id = %s', :c), ROW(450::bigint, 500::bigint),
	'the chat: last_seq 450, last_rev 500');
SELECT is((SELECT count(DISTINCT rev) FROM chat.messages WHERE chat_id = :c AND rev BETWEEN 1 AND 500), 450::bigint,
	'every message has its own cursor, within 1..500');
SELECT is((SELECT max(rev) FROM chat.messages WHERE chat_id = :c), 500::bigint, 'the last change has cursor 500');
SELECT is_empty(format('SELECT seq FROM chat.messages WHERE chat_id = %s AND edited_at IS NULL AND rev <> seq + (
		SELECT count(*) FROM chat.messages e WHERE e.chat_id = %s AND e.edited_at IS NOT NULL AND e.rev < chat.messages.rev)', :c, :c),
	'an unedited message''s cursor is its seq plus the edits committed before it');
SELECT row_eq(format('SELECT last_message_at, last_sender_id, last_preview FROM chat.chats WHERE chat_id = %s', :c),
	(SELECT ROW(created_at, sender_id, body) FROM chat.messages WHERE chat_id = :c AND seq = 450),
	'the chat summary is the message with seq 450');

-- Unread counters: everything after a member's read cursor, and sending
-- moved each sender's cursor to the own message.
SELECT is((SELECT read_seq FROM chat.members WHERE chat_id = :c AND user_id = 10001),
	(SELECT max(seq) FROM chat.messages WHERE chat_id = :c AND sender_id = 10001),
	'10001 (who never marked read) has read up to the own last message');
SELECT is((SELECT unread::bigint FROM chat.members WHERE chat_id = :c AND user_id = 10001),
	(SELECT count(*) FROM chat.messages m WHERE chat_id = :c AND seq > (SELECT read_seq FROM chat.members WHERE chat_id = :c AND user_id = 10001)),
	'10001''s unread is the number of messages after that');
SELECT cmp_ok((SELECT read_seq FROM chat.members WHERE chat_id = :c AND user_id = 10000),
	'>=', (SELECT max(seq) FROM chat.messages WHERE chat_id = :c AND sender_id = 10000),
	'10000 (sending and marking read) has read at least up to the own last message');
SELECT is((SELECT unread::bigint FROM chat.members WHERE chat_id = :c AND user_id = 10000),
	(SELECT count(*) FROM chat.messages m WHERE chat_id = :c AND seq > (SELECT read_seq FROM chat.members WHERE chat_id = :c AND user_id = 10000)),
	'10000''s unread is the number of messages after the read cursor');
SELECT is(ARRAY[chat.unread_total(10000), chat.unread_total(10001)],
	ARRAY(SELECT unread::bigint FROM chat.members WHERE chat_id = :c ORDER BY user_id), 'unread_total agrees');

-- Reads see the same history.
SELECT is(pg_temp.seqs(format('chat.history(10000, %s, NULL, 1000)', :c)), ARRAY(SELECT generate_series(450, 1, -1))::bigint[],
	'history returns 450..1');
SELECT is((SELECT array_agg((m ->> 'cursor')::bigint ORDER BY o) FROM chat.catch_up(10001, :c, 0, 1000) WITH ORDINALITY t(m, o)),
	ARRAY(SELECT rev FROM chat.messages WHERE chat_id = :c ORDER BY rev), 'catch_up returns every message once, in cursor order');

-- Events: one message event per send, in seq order; read receipts rising.
SELECT is(pg_temp.collect_count(jsonb_build_object('chat_id', :c::bigint, 'type', 'message'), 450), 450,
	'the listener got 450 message events');
SELECT is(ARRAY(SELECT coalesce(event -> 'message' -> 'seq', event -> 'seq')::bigint FROM events
		WHERE event @> jsonb_build_object('chat_id', :c::bigint, 'type', 'message') ORDER BY n),
	ARRAY(SELECT generate_series(1, 450))::bigint[], 'message events arrived in seq order, 1..450');
SELECT is(pg_temp.collect_count(jsonb_build_object('chat_id', :c::bigint, 'type', 'edit'), 50), 50,
	'the listener got the 50 edit events');
SELECT is_empty($$SELECT n FROM (SELECT n, (event ->> 'seq')::bigint AS seq, lag((event ->> 'seq')::bigint) OVER (ORDER BY n) AS prev
		FROM events WHERE event @> '{"type": "read", "user_id": 10000}') s WHERE seq <= prev$$,
	'read receipts arrived with rising seqs');

-- open_chat racing from five sessions for a new pair: one chat.
SELECT is(array_agg(dblink_send_query(conn, format('SELECT chat.open_chat(%s, ''direct'', NULL, %s)',
		CASE WHEN conn IN ('s1', 's3', 'e') THEN 10002 ELSE 10003 END, CASE WHEN conn IN ('s1', 's3', 'e') THEN 10003 ELSE 10002 END))),
	ARRAY[1, 1, 1, 1, 1], 'five sessions open the same direct chat at once, from both sides')
FROM unnest(ARRAY['s1', 's2', 's3', 's4', 'e']) conn;
SELECT is((SELECT count(DISTINCT pg_temp.wait(conn)) FROM unnest(ARRAY['s1', 's2', 's3', 's4', 'e']) conn), 1::bigint,
	'all five got the same chat id');
SELECT is((SELECT count(*) FROM chat.chats WHERE kind = 'direct' AND user_a = 10002 AND user_b = 10003), 1::bigint,
	'exactly one chat exists for the pair');

-- Forced races: s1 holds a transaction open while s2 makes the competing
-- call, which must wait for s1 (seen in pg_blocking_pids), then s1 ends.
SELECT pid AS s2pid FROM dblink('s2', 'SELECT pg_backend_pid()') AS t(pid int) \gset

-- The same client_id sent twice at once: the second waits for the first
-- and returns its message; one message is stored.
SELECT is(dblink_exec('s1', 'BEGIN'), 'BEGIN', 'race 1: s1 opens a transaction');
SELECT m AS first FROM dblink('s1', format($$SELECT chat.send_message(10000, %s, 'dup', 'f1eebc99-9c0b-4ef8-bb6d-6bb9bd380a51')$$, :c)) AS t(m jsonb) \gset
SELECT is(dblink_send_query('s2', format($$SELECT chat.send_message(10000, %s, 'dup (retry)', 'f1eebc99-9c0b-4ef8-bb6d-6bb9bd380a51')$$, :c)), 1,
	'race 1: s1 sent with a client_id; s2 retries it before s1 commits');
SELECT ok(pg_temp.wait_blocked(:s2pid), 'race 1: s2 waits for s1');
SELECT is(dblink_exec('s1', 'COMMIT'), 'COMMIT', 'race 1: s1 commits');
SELECT is(pg_temp.wait('s2')::jsonb, :'first'::jsonb, 'race 1: s2 returns s1''s message');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c AND client_id = 'f1eebc99-9c0b-4ef8-bb6d-6bb9bd380a51'), 1::bigint,
	'race 1: one message stored');

-- A send that rolls back gives its seq up to the waiting one: no gap.
SELECT is(dblink_exec('s1', 'BEGIN'), 'BEGIN', 'race 2: s1 opens a transaction');
SELECT m AS r4 FROM dblink('s1', format($$SELECT chat.send_message(10000, %s, 'rolled back')$$, :c)) AS t(m jsonb) \gset
SELECT is(dblink_send_query('s2', format($$SELECT chat.send_message(10001, %s, 'kept')$$, :c)), 1,
	'race 2: s1 sent (seq 452, not committed); s2 sends too');
SELECT ok(pg_temp.wait_blocked(:s2pid), 'race 2: s2 waits for s1');
SELECT is(dblink_exec('s1', 'ROLLBACK'), 'ROLLBACK', 'race 2: s1 rolls back');
SELECT is(pg_temp.wait('s2')::jsonb -> 'seq', :'r4'::jsonb -> 'seq', 'race 2: s2''s message takes the seq s1 gave up');
SELECT is(ARRAY(SELECT seq FROM chat.messages WHERE chat_id = :c ORDER BY seq), ARRAY(SELECT generate_series(1, 452))::bigint[],
	'race 2: seq is still exactly 1..452');

-- A REPEATABLE READ transaction that writes a chat changed after its
-- snapshot gets a serialization failure (40001), as documented.
SELECT is(dblink_exec('s1', 'BEGIN ISOLATION LEVEL REPEATABLE READ'), 'BEGIN', 'rr: s1 starts a REPEATABLE READ transaction');
SELECT is((SELECT x FROM dblink('s1', 'SELECT chat.unread_total(10000)') AS t(x bigint)) >= 0, true, 'rr: s1 takes its snapshot');
SELECT is((SELECT m ->> 'seq' FROM dblink('s2', format($$SELECT chat.send_message(10001, %s, 'after the snapshot')$$, :c)) AS t(m jsonb)),
	'453', 'rr: s2 sends and commits');
SELECT is((pg_temp.try(format($$SELECT * FROM dblink('s1', 'SELECT chat.send_message(10000, %s, ''from the old snapshot'')') AS t(m jsonb)$$, :c))).state,
	'40001', 'rr: s1''s send fails with 40001');
SELECT is(dblink_exec('s1', 'ROLLBACK'), 'ROLLBACK', 'rr: s1 rolls back');
SELECT is((SELECT last_seq FROM chat.chats WHERE chat_id = :c), 453::bigint, 'rr: nothing of s1 was stored');

-- The same direct chat opened from both sides at once.
SELECT is(dblink_exec('s1', 'BEGIN'), 'BEGIN', 'race 3: s1 opens a transaction');
SELECT id AS race2 FROM dblink('s1', $$SELECT chat.open_chat(10004, 'direct', NULL, 10005)$$) AS t(id bigint) \gset
SELECT is(dblink_send_query('s2', $$SELECT chat.open_chat(10005, 'direct', NULL, 10004)$$), 1,
	'race 3: s1 opened a chat; s2 opens it from the other side before s1 commits');
SELECT ok(pg_temp.wait_blocked(:s2pid), 'race 3: s2 waits for s1');
SELECT is(dblink_exec('s1', 'COMMIT'), 'COMMIT', 'race 3: s1 commits');
SELECT is(pg_temp.wait('s2')::bigint, :race2::bigint, 'race 3: s2 gets s1''s chat');

-- ... and when the first opener rolls back, the second creates the chat.
SELECT is(dblink_exec('s1', 'BEGIN'), 'BEGIN', 'race 4: s1 opens a transaction');
SELECT id AS race3 FROM dblink('s1', $$SELECT chat.open_chat(10006, 'direct', NULL, 10007)$$) AS t(id bigint) \gset
SELECT is(dblink_send_query('s2', $$SELECT chat.open_chat(10007, 'direct', NULL, 10006)$$), 1,
	'race 4: s1 opened a chat; s2 opens it from the other side');
SELECT ok(pg_temp.wait_blocked(:s2pid), 'race 4: s2 waits for s1');
SELECT is(dblink_exec('s1', 'ROLLBACK'), 'ROLLBACK', 'race 4: s1 rolls back');
SELECT pg_temp.wait('s2') AS race3_s2 \gset
SELECT is(:race3_s2::bigint, (SELECT chat_id FROM chat.chats WHERE kind = 'direct' AND user_a = 10006 AND user_b = 10007),
	'race 4: s2 created the chat, and it exists');
SELECT is((SELECT array_agg(user_id ORDER BY user_id) FROM chat.members m JOIN chat.chats c USING (chat_id)
		WHERE c.kind = 'direct' AND c.user_a = 10006 AND c.user_b = 10007), ARRAY[10006, 10007]::bigint[],
	'race 4: with both members');

-- Clean up.
SELECT is(pg_temp.remote($$DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 10000 AND 10099)$$),
	'DELETE 453', 'clean up: messages');
SELECT is(pg_temp.remote($$DELETE FROM chat.chats WHERE user_a BETWEEN 10000 AND 10099$$), 'DELETE 4', 'clean up: chats');
SELECT is(array_agg(dblink_disconnect(conn)), ARRAY['OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK'], 'connections closed')
FROM unnest(ARRAY['s1', 's2', 's3', 's4', 'e', 'r', 'listener', 'setup']) conn;

SELECT * FROM finish();
ROLLBACK;
