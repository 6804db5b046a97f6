-- Push notifications: the database half (docs/notifications.md, "Push").
-- The Makefile puts it after sql/notify_email.sql in the install script.
--
-- Two tables. chat.push_state, one row per (user, chat) of a user with a
-- device, says what is due: send_message sets pending_since and due_at (the
-- message's time + chat.push_delay, or the last alert + chat.push_interval
-- when that is later: later messages fold into one alert), mark_read
-- reading a chat to its end turns a shown alert into a due silent clear.
-- chat.push_claim, at send time, checks the rules again (still unread,
-- offline, push on, not muted, not blocked), writes one chat.push_sends row
-- per device of the user with the words' data, and leases those rows to a
-- daemon; chat.push_result reports each. Both run in the claim's
-- transaction, so a daemon killed at any point loses nothing: a due state
-- not yet turned into sends is still due, a leased send is claimed again
-- when its lease ends.
--
-- plpgsql, like the email half: it runs once per claim of a daemon, never
-- per message; the write path (send_message, mark_read) is C.

CREATE TABLE chat.push_state (
	user_id       bigint NOT NULL,
	chat_id       bigint NOT NULL,
	-- the oldest message not yet told by an alert; NULL: no alert pending
	pending_since timestamptz,
	-- when a claim should look at the row (an alert or a clear); NULL: never
	due_at        timestamptz,
	-- a silent clear is due: the chat was read after an alert was shown
	clear         boolean NOT NULL DEFAULT false,
	-- an alert was pushed and not cleared since
	shown         boolean NOT NULL DEFAULT false,
	-- the messages up to this seq were told (or seen live)
	pushed_seq    bigint NOT NULL DEFAULT 0,
	-- the last alert's time: the next one not before push_interval after it
	pushed_at     timestamptz,
	PRIMARY KEY (user_id, chat_id)
);
CREATE INDEX push_state_due ON chat.push_state (due_at) WHERE due_at IS NOT NULL;

-- One push to one device, from its claim to its result. data: what the
-- daemon words and sends (the payload's fields). next_at: not claimable
-- before (the lease's end, or a retry's time).
CREATE TABLE chat.push_sends (
	send_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id  bigint NOT NULL REFERENCES chat.devices ON DELETE CASCADE,
	user_id    bigint NOT NULL,
	chat_id    bigint NOT NULL,
	alert      boolean NOT NULL,
	up_to_seq  bigint NOT NULL,
	data       jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	next_at    timestamptz NOT NULL DEFAULT now(),
	worker     text,
	attempt    integer NOT NULL DEFAULT 0,
	last_error text
);
CREATE INDEX push_sends_due ON chat.push_sends (next_at);
CREATE INDEX push_sends_device ON chat.push_sends (device_id, chat_id);

-- The sends of one (user, chat) that are not in a daemon's hands: a new
-- alert or clear replaces them (one notification per chat on a phone).
CREATE FUNCTION chat.push_supersede(u bigint, c bigint)
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
	DELETE FROM chat.push_sends AS s
	USING chat.devices AS d
	WHERE d.user_id = u AND s.device_id = d.device_id AND s.chat_id = c
	  AND (s.worker IS NULL OR s.next_at <= now());
$$;

-- One send per device of user u with data; returns the devices.
CREATE FUNCTION chat.push_fan_out(u bigint, c bigint, is_alert boolean, upto bigint, data jsonb)
RETURNS int LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n int;
BEGIN
	PERFORM chat.push_supersede(u, c);
	INSERT INTO chat.push_sends (device_id, user_id, chat_id, alert, up_to_seq, data)
	SELECT d.device_id, u, c, is_alert, upto, data FROM chat.devices AS d WHERE d.user_id = u;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- The data of an alert for member row m of chat c (its last_seq): the new
-- messages since the read and told cursors, the newest one not deleted
-- (body only when the user allows previews, at most 1,000 characters; an
-- attachment-only message has an empty body and its attachment count).
-- NULL when every new message is deleted. The new messages are read a page
-- of at most 10 at a time, newest first, until one is not deleted: the
-- newest 10 deleted do not hide an older one.
CREATE FUNCTION chat.push_alert_data(u bigint, c bigint, kind text, peer bigint, last_seq bigint,
									 since bigint, preview boolean, language text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	msg jsonb;
	before bigint := last_seq + 1;
	oldest bigint;
BEGIN
	WHILE msg IS NULL AND before - 1 > since LOOP
		SELECT min((h.m ->> 'seq')::bigint),
			   (array_agg(h.m ORDER BY (h.m ->> 'seq')::bigint DESC)
					FILTER (WHERE (h.m ->> 'seq')::bigint > since AND NOT (h.m ->> 'deleted')::boolean))[1]
		INTO oldest, msg
		FROM chat.history(u, c, before, least(before - 1 - since, 10)::int) AS h(m);
		EXIT WHEN oldest IS NULL;	-- nothing older (history ends)
		before := oldest;
	END LOOP;
	IF msg IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN jsonb_strip_nulls(jsonb_build_object('type', 'alert', 'chat_id', c, 'chat_kind', kind,
		'peer_id', peer, 'sender_id', (msg ->> 'sender_id')::bigint, 'seq', last_seq,
		'count', last_seq - since, 'language', language,
		'attachments', jsonb_array_length(coalesce(msg -> 'attachments', '[]')),
		'body', CASE WHEN preview THEN left(msg ->> 'body', 1000) END,
		'badge', chat.unread_total(u)));
END
$$;

-- Turn one due push_state row (locked by the caller) into sends, or drop
-- it, or put it off, by the rules; returns 'alert', 'clear', 'skipped',
-- 'later' or 'none'. st: the push_state row. The daemon counts outcomes
-- per channel (/metrics); no counter row here, which every claim and
-- result of every daemon would queue on.
CREATE FUNCTION chat.push_materialize(st chat.push_state)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	data jsonb;
	last_seen timestamptz;
BEGIN
	SELECT m.read_seq, m.muted, c.last_seq, c.kind,
		   CASE WHEN c.user_a = m.user_id THEN c.user_b ELSE c.user_a END AS peer_id,
		   coalesce((p.prefs -> 'push')::boolean, true) AS push_on,
		   coalesce((p.prefs -> 'preview')::boolean, true) AS preview,
		   coalesce(p.prefs ->> 'language', 'en') AS language
	INTO r
	FROM chat.members AS m JOIN chat.chats AS c ON c.chat_id = m.chat_id
	LEFT JOIN chat.notify_prefs AS p ON p.user_id = m.user_id
	WHERE m.chat_id = st.chat_id AND m.user_id = st.user_id;
	IF NOT FOUND OR NOT EXISTS (SELECT FROM chat.devices AS d WHERE d.user_id = st.user_id) THEN
		DELETE FROM chat.push_state AS s WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id;
		RETURN 'none';
	END IF;

	IF st.pending_since IS NOT NULL THEN
		IF r.push_on AND NOT r.muted AND r.last_seq > greatest(r.read_seq, st.pushed_seq)
		   AND NOT EXISTS (SELECT FROM chat.blocks AS b WHERE (b.blocker_id = st.user_id AND b.blocked_id = r.peer_id)
							  OR (b.blocker_id = r.peer_id AND b.blocked_id = st.user_id))
		   AND NOT EXISTS (SELECT FROM chat.presence AS pr WHERE pr.user_id = st.user_id) THEN
			-- offline as for email: gone for 30 s at least (a tab reloading is not away)
			SELECT l.last_seen INTO last_seen FROM chat.last_seen AS l WHERE l.user_id = st.user_id;
			-- (push_interval is the write path's: due_at already waits for it)
			IF last_seen > now() - interval '30 seconds' THEN
				UPDATE chat.push_state AS s SET due_at = last_seen + interval '30 seconds'
				WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id;
				RETURN 'later';
			END IF;
			data := chat.push_alert_data(st.user_id, st.chat_id, r.kind, r.peer_id, r.last_seq,
										 greatest(r.read_seq, st.pushed_seq), r.preview, r.language);
			IF data IS NOT NULL THEN
				PERFORM chat.push_fan_out(st.user_id, st.chat_id, true, r.last_seq, data);
				UPDATE chat.push_state AS s SET pending_since = NULL, due_at = NULL, clear = false, shown = true,
					pushed_seq = r.last_seq, pushed_at = now()
				WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id;
				RETURN 'alert';
			END IF;
		END IF;
		-- read in time, seen live, muted, blocked, push off, all deleted:
		-- told (a later alert counts from here); a shown alert is cleared
		UPDATE chat.push_state AS s SET pending_since = NULL, pushed_seq = greatest(s.pushed_seq, r.last_seq),
			clear = s.shown, due_at = CASE WHEN s.shown THEN now() END
		WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id;
		RETURN CASE WHEN st.shown THEN chat.push_materialize(
			(SELECT s FROM chat.push_state AS s WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id)) ELSE 'skipped' END;
	END IF;

	IF st.clear THEN
		PERFORM chat.push_fan_out(st.user_id, st.chat_id, false, r.last_seq,
			jsonb_build_object('type', 'clear', 'chat_id', st.chat_id, 'badge', chat.unread_total(st.user_id)));
		UPDATE chat.push_state AS s SET clear = false, shown = false, due_at = NULL
		WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id;
		RETURN 'clear';
	END IF;
	UPDATE chat.push_state AS s SET due_at = NULL WHERE s.user_id = st.user_id AND s.chat_id = st.chat_id;
	RETURN 'none';
END
$$;

-- push_claim(worker, max_rows, lease_s, scan_rows, kinds): first the due states
-- (at most scan_rows, oldest due first, each locked with SKIP LOCKED so two
-- claims never take one) become sends, then up to max_rows sends that are
-- due are leased to worker for lease_s seconds (only of kinds, when
-- given: the device kinds this daemon has credentials for), one jsonb each:
-- {send_id, device_id, user_id, chat_id, kind, token, alert, attempt, data}.
-- An alert whose chat was read since it was made is deleted instead (a
-- retry must not show what was read); a send of a device that has moved
-- to another user is deleted (it must not show a stranger's message). The
-- fifth claim of a send without a result gives it up.
CREATE FUNCTION chat.push_claim(worker text, max_rows int, lease_s int, scan_rows int DEFAULT 500,
								kinds text[] DEFAULT NULL)
RETURNS SETOF jsonb LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	SET jit = off
AS $$
DECLARE
	st chat.push_state;
	x record;
BEGIN
	IF worker IS NULL OR worker = '' OR octet_length(worker) > 200 THEN
		RAISE EXCEPTION 'worker must be a name of 1 to 200 bytes' USING ERRCODE = '22023';
	END IF;
	IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 10000 THEN
		RAISE EXCEPTION 'max_rows must be between 1 and 10000, not %', max_rows USING ERRCODE = '22023';
	END IF;
	IF lease_s IS NULL OR lease_s NOT BETWEEN 1 AND 86400 THEN
		RAISE EXCEPTION 'lease_s must be between 1 and 86400 seconds, not %', lease_s USING ERRCODE = '22023';
	END IF;
	IF scan_rows IS NULL OR scan_rows NOT BETWEEN 0 AND 100000 THEN
		RAISE EXCEPTION 'scan_rows must be between 0 and 100000, not %', scan_rows USING ERRCODE = '22023';
	END IF;

	FOR st IN SELECT s.* FROM chat.push_state AS s WHERE s.due_at <= now()
			  ORDER BY s.due_at LIMIT scan_rows FOR UPDATE SKIP LOCKED LOOP
		PERFORM chat.push_materialize(st);
	END LOOP;

	FOR x IN SELECT s.send_id, s.device_id, s.user_id, s.chat_id, s.alert, s.up_to_seq, s.attempt, s.data,
					d.kind, d.token, d.user_id AS owner, m.read_seq
			 FROM chat.push_sends AS s
			 LEFT JOIN chat.devices AS d ON d.device_id = s.device_id
			 LEFT JOIN chat.members AS m ON m.chat_id = s.chat_id AND m.user_id = s.user_id
			 WHERE s.next_at <= now() AND (kinds IS NULL OR d.kind IS NULL OR d.kind = ANY (kinds))
			 ORDER BY s.next_at LIMIT max_rows FOR UPDATE OF s SKIP LOCKED LOOP
		IF x.owner IS DISTINCT FROM x.user_id OR x.read_seq IS NULL
		   OR (x.alert AND x.read_seq >= x.up_to_seq) OR x.attempt >= 5 THEN
			DELETE FROM chat.push_sends AS s WHERE s.send_id = x.send_id;
			CONTINUE;
		END IF;
		UPDATE chat.push_sends AS s SET worker = push_claim.worker, attempt = s.attempt + 1,
			next_at = now() + make_interval(secs => lease_s)
		WHERE s.send_id = x.send_id;
		RETURN NEXT jsonb_build_object('send_id', x.send_id, 'device_id', x.device_id, 'user_id', x.user_id,
			'chat_id', x.chat_id, 'kind', x.kind, 'token', x.token, 'alert', x.alert,
			'attempt', x.attempt + 1, 'data', x.data);
	END LOOP;
END
$$;

-- push_result(worker, send_id, status, error, gone, retry_after_s): the
-- outcome of a leased send. No error: sent (the row goes). gone: the
-- service says the device is no more; it is deleted with everything due
-- to it. Otherwise a failure: no answer (status 0), 429 and 5xx are tried
-- again after 5 s, 30 s, 2 min, 10 min (or the service's Retry-After when
-- longer, at most an hour), up to five attempts and a day; any other
-- answer, or past those, gives it up. A worker whose lease another has
-- taken since: a success still counts, a failure is left to the other.
-- Returns sent, gone, retry, dropped or stale.
CREATE FUNCTION chat.push_result(worker text, send_id bigint, status int, error text DEFAULT NULL,
								 gone boolean DEFAULT false, retry_after_s int DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s record;
	pause interval;
BEGIN
	IF worker IS NULL OR send_id IS NULL OR status IS NULL OR gone IS NULL THEN
		RAISE EXCEPTION 'worker, send_id, status and gone must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT p.worker, p.attempt, p.created_at, p.device_id, p.user_id INTO s
	FROM chat.push_sends AS p WHERE p.send_id = push_result.send_id FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 'stale';		-- its device was deleted, or a newer push replaced it
	END IF;
	IF gone THEN
		DELETE FROM chat.devices AS d WHERE d.device_id = s.device_id;
		-- the user's last device: nothing is due to them any more
		DELETE FROM chat.push_state AS p WHERE p.user_id = s.user_id
		  AND NOT EXISTS (SELECT FROM chat.devices AS d WHERE d.user_id = s.user_id);
		RETURN 'gone';
	END IF;
	IF error IS NULL AND status BETWEEN 200 AND 299 THEN
		DELETE FROM chat.push_sends AS p WHERE p.send_id = push_result.send_id;
		RETURN 'sent';
	END IF;
	IF s.worker IS DISTINCT FROM push_result.worker THEN
		RETURN 'stale';
	END IF;
	IF (status = 0 OR status = 429 OR status BETWEEN 500 AND 599) AND s.attempt < 5
	   AND s.created_at > now() - interval '1 day' THEN
		pause := greatest(('{5 seconds, 30 seconds, 2 minutes, 10 minutes}'::interval[])[greatest(s.attempt, 1)],
						  make_interval(secs => least(coalesce(retry_after_s, 0), 3600)));
		UPDATE chat.push_sends AS p SET worker = NULL, next_at = now() + pause, last_error = left(error, 200)
		WHERE p.send_id = push_result.send_id;
		RETURN 'retry';
	END IF;
	DELETE FROM chat.push_sends AS p WHERE p.send_id = push_result.send_id;
	RETURN 'dropped';
END
$$;

-- For /metrics: states due and sends due (not leased), and how long the
-- oldest has waited (0: none).
CREATE FUNCTION chat.push_backlog(OUT due bigint, OUT oldest_due_s double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (SELECT count(*) FROM (SELECT FROM chat.push_state WHERE due_at <= now() LIMIT 10000) AS a)
		 + (SELECT count(*) FROM (SELECT FROM chat.push_sends WHERE next_at <= now() LIMIT 10000) AS b),
		   coalesce(extract(epoch FROM now() - least((SELECT min(due_at) FROM chat.push_state WHERE due_at <= now()),
													 (SELECT min(next_at) FROM chat.push_sends WHERE next_at <= now())))::float8, 0);
$$;

REVOKE ALL ON chat.push_state, chat.push_sends FROM PUBLIC;
REVOKE ALL ON FUNCTION chat.push_supersede(bigint, bigint), chat.push_fan_out(bigint, bigint, boolean, bigint, jsonb),
	chat.push_alert_data(bigint, bigint, text, bigint, bigint, bigint, boolean, text),
	chat.push_materialize(chat.push_state), chat.push_claim(text, int, int, int, text[]),
	chat.push_result(text, bigint, int, text, boolean, int), chat.push_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat.push_claim(text, int, int, int, text[]),
	chat.push_result(text, bigint, int, text, boolean, int), chat.push_backlog()
TO chat_notify;
SELECT pg_catalog.pg_extension_config_dump('chat.push_state', '');
