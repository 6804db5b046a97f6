-- Email digests: the database half (docs/notifications.md, "Email
-- digests"). The Makefile puts it after sql/chat.sql and sql/notify.sql
-- in the install script.
--
-- The write path keeps three columns of chat.members (sql/chat.sql):
-- pending_since (send_message sets it for the other members, sending,
-- mark_read reading everything and email_result clear it), notified_seq and
-- emailed_at (email_result). The daemon (chat-notify, role chat_notify)
-- takes due users with email_claim, sends, and reports with email_result.
--
-- plpgsql, not C: these run once per poll or batch of a daemon (every few
-- seconds), never per message; their cost is a few set-based queries whose
-- plans plpgsql keeps for the session like ChatPlanOnce does, and messages
-- are read through chat.history (C, partition by partition), so nothing here
-- plans against the partitioned chat.messages. C would add some 600 lines
-- for no measurable gain.

-- Preferences are sql/notify.sql's chat.notify_prefs: one row per user
-- who set any, prefs holding the keys set (email, email_address, preview,
-- language, ...); a missing key is its default (email 10min, no address,
-- preview true, language en), so no row means no email. chat_notify is made
-- there too.

-- Per user: the lease of a claimed digest and the retries of failed ones.
-- next_at: not claimable before (a lease's end, or a retry's time).
-- attempt: claims since the last digest sent or given up (a streak; a
-- lease that ran out counts as a failed attempt). message_id: the last
-- claimed digest's. sent / dropped: digests sent / given up, ever.
CREATE TABLE chat.email_state (
	user_id    bigint PRIMARY KEY,
	worker     text,
	next_at    timestamptz NOT NULL DEFAULT '-infinity',
	attempt    integer NOT NULL DEFAULT 0,
	message_id text,
	last_error text,
	sent       bigint NOT NULL DEFAULT 0,
	dropped    bigint NOT NULL DEFAULT 0
);

-- Where email_claim's capped scan of the pending rows resumes (one row;
-- NULLs: from the window's start). Not dumped: a restore starts over.
CREATE TABLE chat.email_scan (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	since     timestamptz,
	chat_id   bigint,
	user_id   bigint
);
INSERT INTO chat.email_scan DEFAULT VALUES;

-- The rule, per member row: the chat is due for its member now, and the
-- member is not leased nor waiting for a retry. The delay counts from
-- pending_since, the oldest message not read and not yet emailed:
-- immediately 0, 10min 10 minutes, hourly 1 hour, daily 24 hours; the
-- 7-day window, the 24-hour limit per chat (not for immediately) and
-- offline (no presence row, last seen 30 s ago or more) are as in
-- docs/notifications.md. due_at: since when. Read only for one member row
-- (by its key) or one user (by members_user_list) at a time, in a LATERAL
-- subquery with OFFSET 0: the planner then probes each joined table by its
-- key for that one row, and never has to guess how many rows pass the
-- combined rule (it guesses 1 and picks plans that are ruinous for 1,000).
CREATE VIEW chat.email_due AS
SELECT m.user_id, m.chat_id, m.pending_since, m.read_seq, m.notified_seq, m.unread,
	m.listed, m.sort_at, c.kind, c.context_id, c.last_seq, c.last_message_at, o.peer_id,
	pf.email_address, pf.language, pf.preview,
	greatest(m.pending_since + d.delay,
			 CASE WHEN pf.mode <> 'immediately' THEN m.emailed_at + interval '24 hours' END,
			 l.last_seen + interval '30 seconds', s.next_at) AS due_at
FROM chat.members AS m
JOIN chat.chats AS c ON c.chat_id = m.chat_id
JOIN chat.notify_prefs AS p ON p.user_id = m.user_id
CROSS JOIN LATERAL (SELECT CASE WHEN c.user_a = m.user_id THEN c.user_b ELSE c.user_a END AS peer_id) AS o
CROSS JOIN LATERAL (SELECT coalesce(p.prefs ->> 'email', '10min') AS mode,
						   p.prefs ->> 'email_address' AS email_address,
						   coalesce(p.prefs ->> 'language', 'en') AS language,
						   coalesce((p.prefs -> 'preview')::boolean, true) AS preview) AS pf
CROSS JOIN LATERAL (SELECT CASE pf.mode
								WHEN 'immediately' THEN interval '0'
								WHEN '10min' THEN interval '10 minutes'
								WHEN 'hourly' THEN interval '1 hour'
								WHEN 'daily' THEN interval '24 hours' END AS delay) AS d
LEFT JOIN chat.last_seen AS l ON l.user_id = m.user_id
LEFT JOIN chat.email_state AS s ON s.user_id = m.user_id
WHERE m.pending_since IS NOT NULL
  AND m.pending_since > now() - interval '7 days'
  AND m.pending_since <= now() - d.delay			-- NULL for off: never
  AND pf.email_address IS NOT NULL
  AND NOT m.muted AND NOT m.archived
  -- a message after the read and emailed cursors; every one after read_seq
  -- is someone else's (sending moves the sender's read_seq)
  AND c.last_seq > greatest(m.read_seq, m.notified_seq)
  AND (pf.mode = 'immediately' OR m.emailed_at IS NULL OR m.emailed_at <= now() - interval '24 hours')
  AND NOT EXISTS (SELECT FROM chat.blocks AS b WHERE b.blocker_id = m.user_id AND b.blocked_id = o.peer_id)
  AND NOT EXISTS (SELECT FROM chat.blocks AS b WHERE b.blocker_id = o.peer_id AND b.blocked_id = m.user_id)
  AND NOT EXISTS (SELECT FROM chat.presence AS pr WHERE pr.user_id = m.user_id)
  AND (l.last_seen IS NULL OR l.last_seen <= now() - interval '30 seconds')
  AND (s.next_at IS NULL OR s.next_at <= now());

-- Mark chats of user u as covered by a digest (covered: [{chat_id,
-- up_to_seq}]): notified_seq moves to up_to_seq (never back, never past
-- the chat's last message), emailed_at to now() when one was sent, and
-- pending_since to the time of the first message after the new cursor, or
-- NULL when there is none. wait false skips rows a sender holds (the claim
-- never waits on chat.members); those stay pending. Returns the rows marked.
-- The member row is locked first, so a send that committed meanwhile is
-- seen by the next statement; one still to come sets pending_since itself.
-- read_seq + unread is the chat's last seq: every message after read_seq is
-- counted in unread until read (api_member.c).
CREATE FUNCTION chat.email_cover(u bigint, covered jsonb, emailed boolean, wait boolean)
RETURNS int LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	x record;
	row_ record;
	last_seq bigint;
	upto bigint;
	cur bigint;
	newer timestamptz;
	n int := 0;
BEGIN
	FOR x IN SELECT (e ->> 'chat_id')::bigint AS chat_id, max((e ->> 'up_to_seq')::bigint) AS up_to
			 FROM jsonb_array_elements(covered) AS e GROUP BY 1 ORDER BY 1 LOOP
		IF wait THEN
			SELECT m.read_seq, m.unread, m.notified_seq INTO row_ FROM chat.members AS m
			WHERE m.chat_id = x.chat_id AND m.user_id = u FOR UPDATE;
		ELSE
			SELECT m.read_seq, m.unread, m.notified_seq INTO row_ FROM chat.members AS m
			WHERE m.chat_id = x.chat_id AND m.user_id = u FOR UPDATE SKIP LOCKED;
		END IF;
		CONTINUE WHEN NOT FOUND;
		last_seq := row_.read_seq + row_.unread;
		upto := least(x.up_to, last_seq);
		cur := greatest(row_.read_seq, row_.notified_seq, upto);
		newer := NULL;
		IF last_seq > cur THEN
			SELECT (h.m ->> 'created_at')::timestamptz INTO newer
			FROM chat.history(u, x.chat_id, cur + 2, 1) AS h(m) WHERE (h.m ->> 'seq')::bigint = cur + 1;
			newer := coalesce(newer, now());
		END IF;
		UPDATE chat.members AS m SET notified_seq = greatest(m.notified_seq, upto),
			emailed_at = CASE WHEN emailed THEN now() ELSE m.emailed_at END,
			pending_since = newer
		WHERE m.chat_id = x.chat_id AND m.user_id = u;
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;

-- The due query's scan. It walks members_pending (the partial index on
-- pending_since) oldest first from where the previous call stopped, at most
-- scan_rows rows, inside the 7-day window: its cost is bounded by scan_rows
-- key probes of each joined table (members, chats, notify_prefs, blocks,
-- presence, last_seen, email_state), whatever the number of members or
-- pending rows. Rows that cannot become due before a new message (no
-- address, email off, muted, archived, blocked) are cleared on the way
-- (pending_since NULL: a new message sets it again), and rows pending for
-- more than 7 days, 1,000 per call, so the window holds what may yet be
-- due. A capped slice that found fewer than max_users due users moves the
-- resume position past it; one that reached the window's end starts the
-- next call from the start. So every pending row is looked at within
-- (pending rows / scan_rows) calls, however many rows wait in front of it
-- (users online for days, in their delay, within the 24-hour limit).
-- Measured: some 15 µs a row examined, 30 ms for 2,000 (400,000 members,
-- 4,000 pending; docs/notifications.md). Returns the due users of the
-- slice, oldest pending first, not leased.
CREATE FUNCTION chat.email_scan_due(max_users int, scan_rows int)
RETURNS bigint[] LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s_since timestamptz;
	s_chat bigint;
	s_user bigint;
	have_pos boolean;
	w_chat bigint[];
	w_user bigint[];
	w_since timestamptz[];
	n int;
	cands bigint[];
BEGIN
	-- another claim moving the position: start from the window's start
	SELECT s.since, s.chat_id, s.user_id INTO s_since, s_chat, s_user
	FROM chat.email_scan AS s WHERE s.singleton FOR UPDATE SKIP LOCKED;
	have_pos := FOUND;
	IF s_since IS NULL OR s_since <= now() - interval '7 days' THEN
		s_since := now() - interval '7 days';
		s_chat := 0;
		s_user := 0;
	END IF;

	SELECT array_agg(w.chat_id ORDER BY w.k), array_agg(w.user_id ORDER BY w.k),
		   array_agg(w.pending_since ORDER BY w.k)
	INTO w_chat, w_user, w_since
	FROM (SELECT m.chat_id, m.user_id, m.pending_since,
				 row_number() OVER (ORDER BY m.pending_since, m.chat_id, m.user_id) AS k
		  FROM (SELECT m.chat_id, m.user_id, m.pending_since FROM chat.members AS m
				WHERE m.pending_since IS NOT NULL
				  AND (m.pending_since, m.chat_id, m.user_id) > (s_since, s_chat, s_user)
				  AND m.pending_since <= now()
				ORDER BY m.pending_since, m.chat_id, m.user_id LIMIT scan_rows) AS m) AS w;
	n := coalesce(cardinality(w_chat), 0);

	UPDATE chat.members AS m SET pending_since = NULL
	FROM unnest(w_chat, w_user) AS w(chat_id, user_id)
	CROSS JOIN LATERAL (
		SELECT g.chat_id, g.user_id FROM chat.members AS g
		JOIN chat.chats AS c ON c.chat_id = g.chat_id
		CROSS JOIN LATERAL (SELECT CASE WHEN c.user_a = g.user_id THEN c.user_b ELSE c.user_a END AS peer_id) AS o
		LEFT JOIN chat.notify_prefs AS p ON p.user_id = g.user_id
		WHERE g.chat_id = w.chat_id AND g.user_id = w.user_id AND g.pending_since IS NOT NULL
		  AND (g.muted OR g.archived OR p.prefs ->> 'email_address' IS NULL OR p.prefs ->> 'email' = 'off'
			   OR EXISTS (SELECT FROM chat.blocks AS b WHERE b.blocker_id = g.user_id AND b.blocked_id = o.peer_id)
			   OR EXISTS (SELECT FROM chat.blocks AS b WHERE b.blocker_id = o.peer_id AND b.blocked_id = g.user_id))
		FOR UPDATE OF g SKIP LOCKED) AS gone
	WHERE m.chat_id = gone.chat_id AND m.user_id = gone.user_id;

	UPDATE chat.members AS m SET pending_since = NULL
	FROM (SELECT o.chat_id, o.user_id FROM chat.members AS o
		  WHERE o.pending_since IS NOT NULL AND o.pending_since <= now() - interval '7 days'
		  ORDER BY o.pending_since LIMIT 1000 FOR UPDATE SKIP LOCKED) AS old
	WHERE m.chat_id = old.chat_id AND m.user_id = old.user_id;

	SELECT array_agg(u.user_id ORDER BY u.oldest, u.user_id) INTO cands
	FROM (SELECT d.user_id, min(d.pending_since) AS oldest
		  FROM unnest(w_chat, w_user) AS w(chat_id, user_id)
		  CROSS JOIN LATERAL (SELECT d.user_id, d.pending_since FROM chat.email_due AS d
							  WHERE d.chat_id = w.chat_id AND d.user_id = w.user_id OFFSET 0) AS d
		  GROUP BY d.user_id ORDER BY 2, 1 LIMIT 2 * max_users) AS u;

	IF have_pos THEN
		IF n < scan_rows THEN
			UPDATE chat.email_scan SET since = NULL, chat_id = NULL, user_id = NULL WHERE singleton;
		ELSIF coalesce(cardinality(cands), 0) < max_users THEN
			UPDATE chat.email_scan SET since = w_since[n], chat_id = w_chat[n], user_id = w_user[n] WHERE singleton;
		END IF;
	END IF;
	RETURN coalesce(cands, '{}');
END
$$;

-- The due chats of users (all of theirs, not only the scanned slice's),
-- each with its newest unread messages as one jsonb array of
-- {user_id, at, chat: {chat_id, kind, context_id, peer_id, unread, up_to_seq,
-- messages}}; messages is null when the newest 10 unread are all deleted.
-- A user's pending chats were active in the window (sort_at, the chat's
-- last activity, is at least pending_since), so members_user_list reads
-- only those.
CREATE FUNCTION chat.email_due_chats(users bigint[])
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', d.user_id, 'at', d.last_message_at,
		'chat', jsonb_build_object('chat_id', d.chat_id, 'kind', d.kind, 'context_id', d.context_id,
			'peer_id', d.peer_id, 'unread', d.unread, 'up_to_seq', d.last_seq, 'messages', x.messages))), '[]')
	FROM unnest(users) AS u(user_id)
	CROSS JOIN LATERAL (SELECT * FROM chat.email_due AS d
						WHERE d.user_id = u.user_id AND d.listed AND d.sort_at > now() - interval '7 days'
						OFFSET 0) AS d
	CROSS JOIN LATERAL (
		SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('seq', y.seq, 'sender_id', (y.m ->> 'sender_id')::bigint,
					'created_at', y.m -> 'created_at', 'attachments', jsonb_array_length(y.m -> 'attachments'),
					'body', CASE WHEN d.preview THEN y.m -> 'body' END)) ORDER BY y.seq) AS messages
		FROM (SELECT (h.m ->> 'seq')::bigint AS seq, h.m
			  FROM chat.history(d.user_id, d.chat_id, d.last_seq + 1,
								least(d.last_seq - greatest(d.read_seq, d.notified_seq), 10)::int) AS h(m)
			  WHERE (h.m ->> 'seq')::bigint > greatest(d.read_seq, d.notified_seq)
				AND NOT (h.m ->> 'deleted')::boolean
			  ORDER BY 1 DESC LIMIT 3) AS y) AS x);
END
$$;

-- email_claim(worker, max_users, lease_s, scan_rows): up to max_users due
-- users, oldest pending first, each leased to worker for lease_s seconds.
-- A user's notify_prefs row is the per-user lock (FOR NO KEY UPDATE SKIP
-- LOCKED, held to commit): a concurrent claim skips the users this one
-- holds, and sees their leases once this one commits (each statement reads
-- a new snapshot). The lease is then set on the user's email_state row
-- only if its next_at has come, under that row's lock: no two calls hand
-- out one user, also at REPEATABLE READ (there a lease set meanwhile makes
-- the claim fail with 40001). A claim never waits for a lock (SKIP LOCKED
-- everywhere; the only insert is of a user whose prefs row it holds), so it
-- is in no lock cycle with senders or results. It may hold set_notify_prefs
-- of the users it claims for the few milliseconds to its commit.
CREATE FUNCTION chat.email_claim(worker text, max_users int, lease_s int, scan_rows int DEFAULT 2000)
RETURNS SETOF jsonb LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	SET jit = off
AS $$
DECLARE
	cands bigint[];
	taken bigint[];
	found_chats jsonb;
	r record;
	st record;
	att int;
BEGIN
	IF worker IS NULL OR worker = '' OR octet_length(worker) > 200 THEN
		RAISE EXCEPTION 'worker must be a name of 1 to 200 bytes' USING ERRCODE = '22023';
	END IF;
	IF max_users IS NULL OR max_users NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'max_users must be between 1 and 1000, not %', max_users USING ERRCODE = '22023';
	END IF;
	IF lease_s IS NULL OR lease_s NOT BETWEEN 1 AND 86400 THEN
		RAISE EXCEPTION 'lease_s must be between 1 and 86400 seconds, not %', lease_s USING ERRCODE = '22023';
	END IF;
	IF scan_rows IS NULL OR scan_rows NOT BETWEEN 1 AND 1000000 THEN
		RAISE EXCEPTION 'scan_rows must be between 1 and 1000000, not %', scan_rows USING ERRCODE = '22023';
	END IF;

	cands := chat.email_scan_due(max_users, scan_rows);
	IF cardinality(cands) = 0 THEN
		RETURN;
	END IF;
	SELECT array_agg(t.user_id ORDER BY t.ord) INTO taken
	FROM (SELECT p.user_id, c.ord FROM chat.notify_prefs AS p
		  JOIN unnest(cands) WITH ORDINALITY AS c(user_id, ord) ON c.user_id = p.user_id
		  ORDER BY c.ord LIMIT max_users
		  FOR NO KEY UPDATE OF p SKIP LOCKED) AS t;
	IF taken IS NULL THEN
		RETURN;
	END IF;

	found_chats := chat.email_due_chats(taken);
	-- chats whose unread messages were all deleted: nothing to tell
	FOR r IN SELECT (e ->> 'user_id')::bigint AS user_id,
					jsonb_agg(jsonb_build_object('chat_id', e -> 'chat' -> 'chat_id', 'up_to_seq', e -> 'chat' -> 'up_to_seq')) AS covered
			 FROM jsonb_array_elements(found_chats) AS e
			 WHERE e -> 'chat' -> 'messages' = 'null' GROUP BY 1 LOOP
		PERFORM chat.email_cover(r.user_id, r.covered, false, false);
	END LOOP;

	FOR r IN SELECT t.user_id, p.prefs ->> 'email_address' AS email_address,
					coalesce(p.prefs ->> 'language', 'en') AS language,
					coalesce((p.prefs -> 'preview')::boolean, true) AS preview,
					jsonb_agg(e -> 'chat' ORDER BY (e ->> 'at')::timestamptz DESC, (e -> 'chat' ->> 'chat_id')::bigint DESC) AS chats,
					(array_agg(format('digest.u%s.c%s.s%s', t.user_id, e -> 'chat' ->> 'chat_id', e -> 'chat' ->> 'up_to_seq')
							   ORDER BY (e ->> 'at')::timestamptz DESC, (e -> 'chat' ->> 'chat_id')::bigint DESC))[1] AS message_id
			 FROM unnest(taken) WITH ORDINALITY AS t(user_id, ord)
			 JOIN jsonb_array_elements(found_chats) AS e
			   ON (e ->> 'user_id')::bigint = t.user_id AND e -> 'chat' -> 'messages' <> 'null'
			 JOIN chat.notify_prefs AS p ON p.user_id = t.user_id
			 GROUP BY t.user_id, t.ord, p.prefs
			 ORDER BY t.ord LOOP
		INSERT INTO chat.email_state AS s (user_id) VALUES (r.user_id) ON CONFLICT (user_id) DO NOTHING;
		-- never waits (an email_result of this user holds it: next time),
		-- so a claim is in no lock cycle with senders or results
		SELECT s.attempt, s.next_at INTO st FROM chat.email_state AS s WHERE s.user_id = r.user_id
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND OR st.next_at > now();	-- or leased by a claim that committed meanwhile
		-- a claim within an hour of the previous attempt's retry time or
		-- lease end continues its streak; a later one starts a new one
		att := CASE WHEN st.attempt > 0 AND st.next_at > now() - interval '1 hour' THEN st.attempt + 1 ELSE 1 END;
		IF att > 5 THEN
			-- claimed five times, never reported: given up like a fifth failure
			PERFORM chat.email_cover(r.user_id,
				(SELECT jsonb_agg(jsonb_build_object('chat_id', c -> 'chat_id', 'up_to_seq', c -> 'up_to_seq'))
				 FROM jsonb_array_elements(r.chats) AS c), false, false);
			UPDATE chat.email_state AS s SET worker = NULL, attempt = 0, dropped = s.dropped + 1,
				last_error = 'claimed 5 times without a result'
			WHERE s.user_id = r.user_id;
			CONTINUE;
		END IF;
		UPDATE chat.email_state AS s SET worker = email_claim.worker, attempt = att, message_id = r.message_id,
			next_at = now() + make_interval(secs => lease_s)
		WHERE s.user_id = r.user_id AND s.next_at <= now();
		CONTINUE WHEN NOT FOUND;
		RETURN NEXT jsonb_build_object('user_id', r.user_id, 'email_address', r.email_address,
			'language', r.language, 'preview', r.preview, 'message_id', r.message_id,
			'attempt', att, 'chats', r.chats);
	END LOOP;
END
$$;

-- email_result(worker, user_id, covered, sent, error): the outcome of a
-- claimed digest. sent: its chats are marked (email_cover) and the lease
-- ends. Not sent: a retry after 1 min, 5 min, 30 min, 2 h; the fifth
-- failure gives the digest up (its chats marked as notified, not as
-- emailed; counted in dropped). A worker whose lease another one has taken
-- since: a sent digest is still marked, a failure is left to the other
-- ('stale'). Returns sent, retry, dropped or stale.
CREATE FUNCTION chat.email_result(worker text, user_id bigint, covered jsonb, sent bool, error text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	st record;
	holds boolean;
BEGIN
	IF worker IS NULL OR user_id IS NULL OR sent IS NULL THEN
		RAISE EXCEPTION 'worker, user_id and sent must not be null' USING ERRCODE = '22023';
	END IF;
	IF covered IS NULL OR jsonb_typeof(covered) <> 'array' OR EXISTS (
			SELECT FROM jsonb_array_elements(covered) AS e
			WHERE jsonb_typeof(e) <> 'object' OR jsonb_typeof(e -> 'chat_id') IS DISTINCT FROM 'number'
			   OR jsonb_typeof(e -> 'up_to_seq') IS DISTINCT FROM 'number'
			   OR (e ->> 'chat_id') !~ '^[0-9]{1,18}$' OR (e ->> 'up_to_seq') !~ '^[0-9]{1,18}$') THEN
		RAISE EXCEPTION 'covered must be an array of {chat_id, up_to_seq} as email_claim returned them'
			USING ERRCODE = '22023';
	END IF;
	SELECT s.worker, s.attempt INTO st FROM chat.email_state AS s WHERE s.user_id = email_result.user_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user % has no claimed digest', email_result.user_id USING ERRCODE = '22023';
	END IF;
	holds := st.worker IS NOT DISTINCT FROM email_result.worker;

	IF sent THEN
		PERFORM chat.email_cover(email_result.user_id, covered, true, true);
		UPDATE chat.email_state AS s SET sent = s.sent + 1,
			worker = CASE WHEN holds THEN NULL ELSE s.worker END,
			next_at = CASE WHEN holds THEN now() ELSE s.next_at END,
			attempt = CASE WHEN holds THEN 0 ELSE s.attempt END,
			last_error = CASE WHEN holds THEN NULL ELSE s.last_error END
		WHERE s.user_id = email_result.user_id;
		RETURN 'sent';
	END IF;
	IF NOT holds THEN
		RETURN 'stale';
	END IF;
	IF st.attempt >= 5 THEN
		PERFORM chat.email_cover(email_result.user_id, covered, false, true);
		UPDATE chat.email_state AS s SET worker = NULL, next_at = now(), attempt = 0, dropped = s.dropped + 1,
			last_error = left(error, 200)
		WHERE s.user_id = email_result.user_id;
		RETURN 'dropped';
	END IF;
	UPDATE chat.email_state AS s SET worker = NULL, last_error = left(error, 200),
		next_at = now() + ('{1 minute, 5 minutes, 30 minutes, 2 hours}'::interval[])[greatest(st.attempt, 1)]
	WHERE s.user_id = email_result.user_id;
	RETURN 'retry';
END
$$;

-- For /metrics: users with a due chat who are not leased nor waiting for a
-- retry, and how long the longest-waiting has been due (0: none). Reads
-- members_pending oldest first, at most 10,000 rows of the window (some
-- 0.2 s): beyond that due_users is a lower bound.
CREATE FUNCTION chat.email_backlog(OUT due_users bigint, OUT oldest_due_s double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
BEGIN
	SELECT count(DISTINCT d.user_id), coalesce(extract(epoch FROM now() - min(d.due_at))::float8, 0)
	INTO due_users, oldest_due_s
	FROM (SELECT m.chat_id, m.user_id FROM chat.members AS m
		  WHERE m.pending_since IS NOT NULL AND m.pending_since > now() - interval '7 days'
			AND m.pending_since <= now()
		  ORDER BY m.pending_since LIMIT 10000) AS w
	CROSS JOIN LATERAL (SELECT d.user_id, d.due_at FROM chat.email_due AS d
						WHERE d.chat_id = w.chat_id AND d.user_id = w.user_id OFFSET 0) AS d;
END
$$;

REVOKE ALL ON chat.email_state, chat.email_scan, chat.email_due FROM PUBLIC;
REVOKE ALL ON FUNCTION chat.email_cover(bigint, jsonb, boolean, boolean), chat.email_scan_due(int, int),
	chat.email_due_chats(bigint[]), chat.email_claim(text, int, int, int),
	chat.email_result(text, bigint, jsonb, bool, text), chat.email_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat.email_claim(text, int, int, int),
	chat.email_result(text, bigint, jsonb, bool, text), chat.email_backlog()
TO chat_notify;
SELECT pg_catalog.pg_extension_config_dump('chat.email_state', '');
