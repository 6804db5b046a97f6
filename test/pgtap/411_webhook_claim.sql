-- The daemon's side of webhooks: webhook_claim (leases, SKIP LOCKED
-- across sessions, one daemon per endpoint at a time, fairness, a lease
-- running out), webhook_result (delivered, the retry schedule and its
-- jitter, dropped, 410 and 72 h of failures disabling, webhook_disabled
-- events, enable_webhook) and webhook_backlog. Sessions 'a', 'b' and 'c'
-- (dblink) commit; their rows are deleted at the end.
-- Users 41100..41199; endpoint URLs https://t411.example/…
BEGIN;
\ir _helpers.psql
SELECT plan(96);
SET LOCAL client_min_messages = error;	-- the warnings of disabled endpoints

CREATE FUNCTION pg_temp.remote(conn text, sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink(conn, sql) AS t(r text) $$;

CREATE FUNCTION pg_temp.secret(fill text) RETURNS text
LANGUAGE sql AS $$ SELECT 'whsec_' || replace(encode(decode(repeat(fill, 32), 'hex'), 'base64'), E'\n', '') $$;

-- What a claim returned, as endpoint:event pairs, in order.
CREATE FUNCTION pg_temp.pairs(worker text, max_rows int, per_endpoint int, lease_s int DEFAULT 30) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(c.endpoint_id || ':' || c.event_id, ',' ORDER BY c.ord), '')
	FROM chat.webhook_claim(worker, max_rows, per_endpoint, lease_s) WITH ORDINALITY AS c(endpoint_id, event_id, url, secrets, webhook_id, body, attempt, ord)
$$;

-- Claimed rows per endpoint, "endpoint:count,...".
CREATE FUNCTION pg_temp.per_endpoint(worker text, max_rows int, per_endpoint int) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(e || ':' || n, ',' ORDER BY e), '')
	FROM (SELECT c.endpoint_id AS e, count(*) AS n FROM chat.webhook_claim(worker, max_rows, per_endpoint, 30) c GROUP BY 1) s
$$;

-- A fresh start: no lease, every delivery due and not attempted yet (a
-- transaction's now() stands still, so time cannot pass). plpgsql: a sql
-- function's body would lock chat.webhook_deliveries for writing at
-- CREATE FUNCTION, and remove_webhook in session c would wait for us.
CREATE FUNCTION pg_temp.all_due() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE chat.webhooks SET leased_by = NULL, leased_until = NULL;
	UPDATE chat.webhook_deliveries SET leased_by = NULL, attempts = 0, next_at = now() - interval '1 second';
END
$$;

-- Seconds until a delivery is due.
CREATE FUNCTION pg_temp.due_in(endpoint bigint, event bigint) RETURNS float8
LANGUAGE sql AS $$
	SELECT extract(epoch FROM next_at - now())::float8 FROM chat.webhook_deliveries WHERE endpoint_id = endpoint AND event_id = event
$$;

-- The retry schedule: after failed attempt n the next is due in
-- schedule[n] s ± 10 %; returns the attempts whose delay was outside, and
-- how many distinct delays 20 results after attempt 1 gave (jitter).
CREATE FUNCTION pg_temp.check_schedule(endpoint bigint, event bigint, OUT outside int[], OUT distinct_delays int)
LANGUAGE plpgsql AS $$
DECLARE
	schedule int[] := ARRAY[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];
	d float8;
	delays float8[] := '{}';
BEGIN
	outside := '{}';
	FOR n IN 1..9 LOOP
		UPDATE chat.webhook_deliveries SET attempts = n WHERE endpoint_id = endpoint AND event_id = event;
		IF chat.webhook_result(endpoint, event, 500, 'boom') <> 'retry' THEN
			outside := outside || n;
		END IF;
		d := pg_temp.due_in(endpoint, event);
		IF d < schedule[n] * 0.9 - 0.001 OR d > schedule[n] * 1.1 + 0.001 THEN
			outside := outside || n;
		END IF;
	END LOOP;
	FOR i IN 1..20 LOOP
		UPDATE chat.webhook_deliveries SET attempts = 1 WHERE endpoint_id = endpoint AND event_id = event;
		PERFORM chat.webhook_result(endpoint, event, 503, NULL);
		d := pg_temp.due_in(endpoint, event);
		IF d < 4.5 - 0.001 OR d > 5.5 + 0.001 THEN
			outside := outside || 1;
		END IF;
		delays := delays || d;
	END LOOP;
	distinct_delays := (SELECT count(DISTINCT x) FROM unnest(delays) x);
END
$$;

-- Two daemons at once (committed rows): SKIP LOCKED, endpoint leases, a lease running out.
SELECT is(dblink_connect('a', pg_temp.connstr()), 'OK', 'session a connected');
SELECT is(dblink_connect('b', pg_temp.connstr()), 'OK', 'session b connected');
SELECT is(dblink_connect('c', pg_temp.connstr()), 'OK', 'session c connected');
SELECT lives_ok($$SELECT pg_temp.remote('c', $r$
		SET client_min_messages = error;
		SELECT count(chat.remove_webhook(endpoint_id))::text FROM chat.webhooks WHERE url LIKE 'https://t411.example/%';
		DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 41100 AND 41199);
		DELETE FROM chat.chats WHERE user_a BETWEEN 41100 AND 41199;
		DELETE FROM chat.contacts WHERE user_id BETWEEN 41100 AND 41199$r$)$$,
	'no leftovers of an earlier run');
SELECT is((SELECT count(*) FROM chat.webhooks), 0::bigint, '(no other endpoint)');
SELECT pg_temp.remote('c', format($$SELECT chat.add_webhook('https://t411.example/1', %L, ARRAY['message'])::text$$, pg_temp.secret('01')))::bigint AS x1 \gset
SELECT pg_temp.remote('c', format($$SELECT chat.add_webhook('https://t411.example/2', %L, ARRAY['message'])::text$$, pg_temp.secret('02')))::bigint AS x2 \gset
SELECT pg_temp.remote('c', $$SELECT chat.open_chat(41101, 'direct', NULL, 41102)::text$$)::bigint AS xc \gset
SELECT is(pg_temp.remote('c', format($$SELECT chat.send_message(41101, %1$s, 'm1') ->> 'seq'; SELECT chat.send_message(41101, %1$s, 'm2') ->> 'seq';
		SELECT chat.send_message(41101, %1$s, 'm3') ->> 'seq'$$, :xc)), '3', 'three messages committed');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries WHERE endpoint_id IN (:x1, :x2)), 6::bigint, 'for two endpoints: six deliveries');
SELECT pg_temp.remote('a', $$BEGIN; SELECT endpoint_id || ':' || event_id FROM chat.webhook_claim('wa', 1, 10, 60)$$) AS a_got \gset
SELECT is(split_part(:'a_got', ':', 1)::bigint, LEAST(:x1, :x2)::bigint, 'a claims one delivery of the endpoint waiting longest, and holds it');
SELECT is(pg_temp.remote('b', $$SET statement_timeout = '10s';
		SELECT count(*) || ' of ' || string_agg(DISTINCT endpoint_id::text, ',') FROM chat.webhook_claim('wb', 10, 10, 60)$$),
	'3 of ' || GREATEST(:x1, :x2), 'b, at the same time, does not wait: it skips a''s endpoint and takes the other''s three');
SELECT is(pg_temp.remote('a', 'COMMIT; SELECT 1::text'), '1', 'a commits');
SELECT is(pg_temp.remote('c', $$SELECT count(*)::text FROM chat.webhook_claim('wc', 10, 10, 60)$$), '0',
	'a third daemon gets nothing: both endpoints are leased');
SELECT is((SELECT array_agg(leased_by ORDER BY endpoint_id) FROM chat.webhooks WHERE endpoint_id IN (:x1, :x2)),
	CASE WHEN :x1 < :x2 THEN ARRAY['wa', 'wb'] ELSE ARRAY['wb', 'wa'] END, 'each endpoint is leased to the daemon that claimed it');
SELECT is(pg_temp.remote('a', format('SELECT chat.webhook_result(%s, %s, 204, NULL)', split_part(:'a_got', ':', 1), split_part(:'a_got', ':', 2))),
	'delivered', 'a reports its delivery');
SELECT is((SELECT leased_until FROM chat.webhooks WHERE endpoint_id = LEAST(:x1, :x2)), NULL::timestamptz,
	'having reported all it claimed, a''s lease of the endpoint ends');
SELECT is(pg_temp.remote('c', $$SELECT string_agg(attempt::text, ',') FROM chat.webhook_claim('wdead', 10, 10, 1)$$), '1,1',
	'another daemon claims the endpoint''s other two, for 1 s, and dies');
SELECT is(pg_temp.remote('b', $$SELECT count(*)::text FROM chat.webhook_claim('wb', 10, 10, 60)$$), '0', 'during the lease nobody else gets them');
SELECT pg_sleep(1.2);
SELECT is(pg_temp.remote('b', $$SELECT string_agg(attempt::text, ',') FROM chat.webhook_claim('wb', 10, 10, 60)$$), '2,2',
	'after it, they are claimed again: their second attempt');
SELECT is(pg_temp.remote('c', format($$BEGIN;
		SELECT set_config('t411.scans', pg_stat_get_xact_numscans('chat.webhooks'::regclass)::text, false);
		SELECT chat.send_message(41102, %s, 'm4');
		SELECT (pg_stat_get_xact_numscans('chat.webhooks'::regclass) - current_setting('t411.scans')::bigint)::text$$, :xc)), '0',
	'claims, leases and results made no backend read the endpoints again: c records without a query of chat.webhooks');
SELECT is(pg_temp.remote('c', 'COMMIT; SELECT 1::text'), '1', '(committed)');
SELECT lives_ok($$SELECT pg_temp.remote('c', $r$
		SET client_min_messages = error;
		SELECT count(chat.remove_webhook(endpoint_id))::text FROM chat.webhooks WHERE url LIKE 'https://t411.example/%';
		DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats WHERE user_a BETWEEN 41100 AND 41199);
		DELETE FROM chat.chats WHERE user_a BETWEEN 41100 AND 41199;
		DELETE FROM chat.contacts WHERE user_id BETWEEN 41100 AND 41199$r$)$$,
	'the committed rows are deleted');
SELECT is((SELECT count(*) FROM chat.webhook_events WHERE chat_id = :xc), 0::bigint, 'their events with them');
SELECT dblink_disconnect('a');
SELECT dblink_disconnect('b');
SELECT dblink_disconnect('c');

-- webhook_claim's refusals.
SELECT is(pg_temp.outcome('SELECT * FROM chat.webhook_claim(NULL, 1, 1, 1)'), '22023: worker must not be null', 'NULL worker');
SELECT is(pg_temp.outcome($$SELECT * FROM chat.webhook_claim('', 1, 1, 1)$$), '22023: worker must be 1 to 200 bytes long', 'empty worker');
SELECT is(pg_temp.outcome(format('SELECT * FROM chat.webhook_claim(%L, 1, 1, 1)', repeat('w', 201))),
	'22023: worker must be 1 to 200 bytes long', 'a worker name of 201 bytes');
SELECT is(pg_temp.outcome($$SELECT * FROM chat.webhook_claim('w', 0, 1, 1)$$), '22023: max_rows must be between 1 and 10000, not 0', 'max_rows 0');
SELECT is(pg_temp.outcome($$SELECT * FROM chat.webhook_claim('w', 1, NULL, 1)$$), '22023: per_endpoint must not be null', 'NULL per_endpoint');
SELECT is(pg_temp.outcome($$SELECT * FROM chat.webhook_claim('w', 1, 0, 1)$$), '22023: per_endpoint must be between 1 and 10000, not 0', 'per_endpoint 0');
SELECT is(pg_temp.outcome($$SELECT * FROM chat.webhook_claim('w', 1, 1, 0)$$), '22023: lease_s must be between 1 and 86400, not 0', 'lease_s 0');
SELECT is(pg_temp.outcome($$SELECT * FROM chat.webhook_claim('w', 1, 1, 86401)$$), '22023: lease_s must be between 1 and 86400, not 86401', 'lease_s over a day');

-- In this transaction: three endpoints, a chat, events.
SELECT chat.add_webhook('https://t411.example/all', pg_temp.secret('0a')) AS e1 \gset
SELECT chat.add_webhook('https://t411.example/msg', pg_temp.secret('0b'), ARRAY['message']) AS e2 \gset
SELECT chat.add_webhook('https://t411.example/ops', pg_temp.secret('0c'), ARRAY['webhook_disabled']) AS e3 \gset
SELECT chat.rotate_webhook_secret(:e1, pg_temp.secret('0d'));
SELECT chat.open_chat(41110, 'product', 411, 41111) AS c \gset
SELECT chat.send_message(41110, :c, 'm' || i) IS NOT NULL FROM generate_series(1, 3) i;
SELECT is((SELECT count(*) FROM chat.webhook_deliveries), 7::bigint, 'four events for the endpoint of every type, three for the other');
SELECT is(pg_temp.pairs('w0', 100, 100), '', 'deliveries recorded in this transaction are not due before it began');
SELECT pg_temp.all_due();

-- A claim: what the daemon needs, leased.
CREATE TEMP TABLE claimed AS SELECT * FROM chat.webhook_claim('w1', 100, 100, 30) WITH ORDINALITY AS c(endpoint_id, event_id, url, secrets, webhook_id, body, attempt, ord);
SELECT is((SELECT count(*) FROM claimed), 7::bigint, 'the claim takes every due delivery');
SELECT is((SELECT array_agg(endpoint_id || ':' || event_id ORDER BY ord) FROM claimed),
	(SELECT array_agg(endpoint_id || ':' || event_id ORDER BY endpoint_id, event_id) FROM chat.webhook_deliveries),
	'in order per endpoint, oldest first');
SELECT ok((SELECT bool_and(c.webhook_id = 'evt_' || c.event_id AND c.body = e.body AND c.attempt = 1
		AND c.url = w.url AND c.secrets = w.secrets)
	FROM claimed c JOIN chat.webhook_events e USING (event_id) JOIN chat.webhooks w USING (endpoint_id)),
	'each with its webhook id evt_<event id>, body, URL, secrets, and attempt 1');
SELECT is((SELECT secrets FROM claimed WHERE endpoint_id = :e1 LIMIT 1), ARRAY[pg_temp.secret('0d'), pg_temp.secret('0a')],
	'both secrets of a rotated endpoint, the newest first');
SELECT ok((SELECT bool_and(leased_by = 'w1' AND next_at = now() + interval '30 seconds' AND attempts = 1) FROM chat.webhook_deliveries),
	'the deliveries are leased to w1 for 30 s, their attempt counted');
SELECT ok((SELECT bool_and(leased_by = 'w1' AND leased_until = now() + interval '30 seconds') FROM chat.webhooks WHERE endpoint_id IN (:e1, :e2)),
	'and so are their endpoints');
SELECT is((SELECT leased_until FROM chat.webhooks WHERE endpoint_id = :e3), NULL::timestamptz, 'not an endpoint with nothing due');
SELECT is(pg_temp.pairs('w2', 100, 100), '', 'another claim gets nothing of them');
SELECT is((SELECT due FROM chat.webhook_backlog()), 0::bigint, 'leased deliveries are not in the backlog');

-- Fairness: a long backlog of one endpoint does not crowd out another.
SELECT chat.edit_message(41110, :c, 1, 'edit ' || i) IS NOT NULL FROM generate_series(1, 20) i;
SELECT pg_temp.all_due();
UPDATE chat.webhook_deliveries SET next_at = now() - interval '1 hour' + event_id * interval '1 ms' WHERE endpoint_id = :e1;
SELECT is((SELECT due FROM chat.webhook_backlog()), 27::bigint, 'the backlog: 24 due for one endpoint, 3 for the other');
SELECT ok((SELECT oldest_due_s BETWEEN 3599 AND 3601 FROM chat.webhook_backlog()), 'the oldest due for an hour');
SELECT is(pg_temp.per_endpoint('w', 10, 5), format('%s:5,%s:3', :e1, :e2), 'at most per_endpoint each');
SELECT pg_temp.all_due();
UPDATE chat.webhook_deliveries SET next_at = now() - interval '1 hour' + event_id * interval '1 ms' WHERE endpoint_id = :e1;
SELECT is(pg_temp.per_endpoint('w', 4, 5), format('%s:2,%s:2', :e1, :e2),
	'every endpoint its first before any its second, however old the other''s backlog');
SELECT pg_temp.all_due();
UPDATE chat.webhook_deliveries SET next_at = now() - interval '1 hour' + event_id * interval '1 ms' WHERE endpoint_id = :e1;
SELECT is(pg_temp.per_endpoint('w', 1, 5), format('%s:1', :e1), 'with room for one, the endpoint waiting longest');
SELECT pg_temp.all_due();
UPDATE chat.webhook_deliveries SET next_at = now() + interval '1 minute' WHERE endpoint_id = :e2;
SELECT is(pg_temp.per_endpoint('w', 100, 100), format('%s:24', :e1), 'deliveries not yet due are not claimed');

-- Results: delivered.
SELECT pg_temp.all_due();
SELECT (SELECT min(event_id) FROM chat.webhook_deliveries WHERE endpoint_id = :e2) AS ev \gset
SELECT is(pg_temp.per_endpoint('w1', 100, 100), format('%s:24,%s:3', :e1, :e2), '(all claimed)');
SELECT is(chat.webhook_result(:e2, :ev, 200, NULL), 'delivered', '200: delivered');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries WHERE endpoint_id = :e2 AND event_id = :ev), 0::bigint, 'the delivery is gone');
SELECT is((SELECT count(*) FROM chat.webhook_events WHERE event_id = :ev), 1::bigint, 'the event stays for the other endpoint');
SELECT ok((SELECT leased_until IS NOT NULL FROM chat.webhooks WHERE endpoint_id = :e2), 'the endpoint stays leased while w1 holds others');
SELECT is(chat.webhook_result(:e1, :ev, 299, NULL), 'delivered', '299: delivered too');
SELECT is((SELECT count(*) FROM chat.webhook_events WHERE event_id = :ev), 0::bigint, 'the last delivery done, the event is deleted');
SELECT is(chat.webhook_result(:e1, :ev, 200, NULL), 'gone', 'reported again: gone');

-- Failures: the retry schedule.
SELECT (SELECT min(event_id) FROM chat.webhook_deliveries WHERE endpoint_id = :e2) AS ev \gset
SELECT is(chat.webhook_result(:e2, :ev, 503, repeat('é', 150)), 'retry', '503: retry');
SELECT ok((SELECT attempts = 1 AND leased_by IS NULL AND last_status = 503 AND last_error = repeat('é', 100)
	FROM chat.webhook_deliveries WHERE endpoint_id = :e2 AND event_id = :ev), 'its status kept, its error cut to 200 bytes');
SELECT ok(pg_temp.due_in(:e2, :ev) BETWEEN 4.5 AND 5.5, 'due again in 5 s ± 10 %');
SELECT is((SELECT failing_since FROM chat.webhooks WHERE endpoint_id = :e2), now(), 'the endpoint is failing since now');
SELECT is(chat.webhook_result(:e2, :ev, 0, 'connection refused'), 'retry', 'no answer (0): retry');
SELECT is((SELECT failing_since FROM chat.webhooks WHERE endpoint_id = :e2), now(), 'failing since the first failure');
SELECT is((SELECT row(outside, distinct_delays > 1)::text FROM pg_temp.check_schedule(:e2, :ev)), row('{}'::int[], true)::text,
	'after attempts 1 to 9: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each ± 10 %, jittered');
UPDATE chat.webhook_deliveries SET attempts = 10 WHERE endpoint_id = :e2 AND event_id = :ev;
SELECT is(chat.webhook_result(:e2, :ev, 500, NULL), 'dropped', 'a failed tenth attempt: dropped');
SELECT is((SELECT count(*) FROM chat.webhook_deliveries WHERE endpoint_id = :e2 AND event_id = :ev), 0::bigint, 'the delivery is gone');
SELECT is((SELECT (w ->> 'dropped')::int FROM chat.webhooks() w WHERE (w ->> 'endpoint_id')::bigint = :e2), 1, 'and counted');
SELECT is((SELECT dropped FROM chat.webhook_backlog()), 1::bigint, 'webhook_backlog reports it');
SELECT (SELECT min(event_id) FROM chat.webhook_deliveries WHERE endpoint_id = :e2) AS ev \gset
SELECT is(chat.webhook_result(:e2, :ev, 201, NULL), 'delivered', 'a success');
SELECT is((SELECT failing_since FROM chat.webhooks WHERE endpoint_id = :e2), NULL::timestamptz, 'ends the endpoint''s failing');
SELECT is((SELECT leased_until FROM chat.webhooks WHERE endpoint_id = :e2), NULL::timestamptz,
	'w1 has reported all it claimed of it: its lease ends');

-- webhook_result's refusals, and the unknown.
SELECT is(pg_temp.outcome('SELECT chat.webhook_result(NULL, 1, 200, NULL)'), '22023: endpoint_id must not be null', 'NULL endpoint_id');
SELECT is(pg_temp.outcome('SELECT chat.webhook_result(1, NULL, 200, NULL)'), '22023: event_id must not be null', 'NULL event_id');
SELECT is(pg_temp.outcome('SELECT chat.webhook_result(1, 1, NULL, NULL)'), '22023: status must not be null', 'NULL status');
SELECT is(pg_temp.outcome('SELECT chat.webhook_result(1, 1, 99, NULL)'),
	'22023: status must be an HTTP status (100 to 599) or 0 for no answer, not 99', 'status 99');
SELECT is(pg_temp.outcome('SELECT chat.webhook_result(1, 1, 600, NULL)'),
	'22023: status must be an HTTP status (100 to 599) or 0 for no answer, not 600', 'status 600');
SELECT is(chat.webhook_result(-1, 1, 500, NULL), 'gone', 'an unknown endpoint: gone');
SELECT is(chat.webhook_result(:e2, -1, 500, NULL), 'gone', 'an unknown delivery: gone');

-- 410 disables at once.
SELECT pg_temp.all_due();
SELECT (SELECT min(event_id) FROM chat.webhook_deliveries WHERE endpoint_id = :e1) AS ev \gset
SELECT max(event_id) AS before_disable FROM chat.webhook_events \gset
SELECT is(pg_temp.per_endpoint('w1', 100, 100), format('%s:23', :e1), '(claimed)');
SELECT is(chat.webhook_result(:e1, :ev, 410, 'Gone'), 'disabled', '410: disabled');
SELECT is((SELECT row(enabled, disabled_reason, disabled_at = now())::text FROM chat.webhooks WHERE endpoint_id = :e1),
	row(false, '410 Gone', true)::text, 'the endpoint is disabled, with the reason');
SELECT is((SELECT row(attempts, leased_by, last_status)::text FROM chat.webhook_deliveries WHERE endpoint_id = :e1 AND event_id = :ev),
	row(1, NULL::text, 410)::text, 'the delivery stays, for after it is enabled again');
SELECT is((SELECT body::jsonb - 'timestamp' FROM chat.webhook_events WHERE event_id > :before_disable),
	jsonb_build_object('type', 'webhook_disabled', 'endpoint_id', :e1, 'reason', '410 Gone'), 'a webhook_disabled event is recorded');
SELECT is((SELECT array_agg(endpoint_id) FROM chat.webhook_deliveries WHERE event_id > :before_disable), ARRAY[:e3]::bigint[],
	'for the endpoints that take it (not the disabled one)');
SELECT chat.send_message(41111, :c, 'after the 410') IS NOT NULL AS s \gset
SELECT is((SELECT array_agg(endpoint_id) FROM chat.webhook_deliveries WHERE event_id > :before_disable + 1 ORDER BY 1), ARRAY[:e2]::bigint[],
	'a disabled endpoint gets no new deliveries');
SELECT pg_temp.all_due();
SELECT is(pg_temp.per_endpoint('w1', 100, 100), format('%s:1,%s:1', :e2, :e3), 'nor claims');
SELECT is((SELECT due FROM chat.webhook_backlog()), 0::bigint, 'nor a place in the backlog');
SELECT is(chat.webhook_result(:e1, :ev, 410, NULL), 'disabled', 'another 410 for it: still disabled');
SELECT is((SELECT count(*) FROM chat.webhook_events WHERE type = 'webhook_disabled'), 1::bigint, 'and no second event');

-- enable_webhook.
SELECT lives_ok(format('SELECT chat.enable_webhook(%s)', :e1), 'enable it again');
SELECT is((SELECT row(enabled, disabled_reason, failing_since)::text FROM chat.webhooks WHERE endpoint_id = :e1),
	row(true, NULL::text, NULL::timestamptz)::text, 'enabled, reason and failing cleared');
SELECT ok((SELECT bool_and(next_at <= now() AND attempts = 0 AND leased_by IS NULL) FROM chat.webhook_deliveries WHERE endpoint_id = :e1),
	'its deliveries are due at once and start their retries afresh');
SELECT is(pg_temp.per_endpoint('w1', 100, 100), format('%s:23', :e1), 'and are claimed');
SELECT chat.send_message(41111, :c, 'after enabling') IS NOT NULL AS s \gset
SELECT ok(EXISTS (SELECT FROM chat.webhook_deliveries d JOIN chat.webhook_events e USING (event_id)
	WHERE d.endpoint_id = :e1 AND e.body LIKE '%after enabling%'), 'new events reach it again');

-- 72 h without a success disables.
SELECT pg_temp.all_due();
SELECT is(pg_temp.per_endpoint('w1', 100, 100), format('%s:24,%s:2,%s:1', :e1, :e2, :e3), '(claimed)');
SELECT (SELECT min(event_id) FROM chat.webhook_deliveries WHERE endpoint_id = :e1) AS ev \gset
UPDATE chat.webhooks SET failing_since = now() - interval '71 hours' WHERE endpoint_id = :e1;
SELECT is(chat.webhook_result(:e1, :ev, 503, NULL), 'retry', 'failing for 71 h: a retry');
UPDATE chat.webhooks SET failing_since = now() - interval '73 hours' WHERE endpoint_id = :e1;
SELECT (SELECT min(event_id) FROM chat.webhook_deliveries WHERE endpoint_id = :e1 AND leased_by IS NOT NULL) AS ev \gset
SELECT is(chat.webhook_result(:e1, :ev, 503, NULL), 'disabled', 'failing for 73 h: disabled');
SELECT is((SELECT row(enabled, disabled_reason)::text FROM chat.webhooks WHERE endpoint_id = :e1),
	row(false, 'no success for 72 h (last attempt: HTTP 503)')::text, 'with the reason');
SELECT is((SELECT count(*) FROM chat.webhook_events WHERE type = 'webhook_disabled'
	AND body::jsonb @> jsonb_build_object('endpoint_id', :e1, 'reason', 'no success for 72 h (last attempt: HTTP 503)')), 1::bigint,
	'and a webhook_disabled event');

SELECT * FROM finish();
ROLLBACK;
