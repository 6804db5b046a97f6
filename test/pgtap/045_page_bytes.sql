-- Pages bounded in bytes (chat.page_max_bytes, issue 15 item 3): history,
-- catch_up and list_chats stop a page before the row that would take its
-- JSON text over the budget, always with at least one row, mark its last
-- row "more": true, and continue exactly from its last row; bad budgets are
-- refused. A message of 4,000 control characters is about 24 kB of JSON.
-- Users 4500..4599.
BEGIN;
\ir _helpers.psql
SELECT plan(41);

-- Every page of a walk through history, catch_up or list_chats: rows,
-- bytes of JSON text, whether the last row (and only it) says more, and
-- the keys (seq, cursor or chat_id) in the order the pages gave them.
CREATE FUNCTION pg_temp.walk(what text, u bigint, c bigint, page int)
RETURNS TABLE (n int, bytes bigint, last_more bool, other_more bool, keys bigint[])
LANGUAGE plpgsql AS $$
DECLARE
	pos text := CASE what WHEN 'history' THEN 'NULL' WHEN 'catch_up' THEN '0' END;  -- list: NULL
	call text;
BEGIN
	FOR i IN 1..1000 LOOP
		call := CASE what
			WHEN 'history' THEN format('chat.history(%s, %s, %s, %s)', u, c, pos, page)
			WHEN 'catch_up' THEN format('chat.catch_up(%s, %s, %s, %s)', u, c, pos, page)
			ELSE format('chat.list_chats(%s, %L, %s)', u, pos, page) END;
		EXECUTE format($q$
			SELECT count(*)::int, coalesce(sum(octet_length(r::text)), 0)::bigint,
				coalesce(bool_or((r ->> 'more')::bool) FILTER (WHERE o = (SELECT count(*) FROM %1$s)), false),
				coalesce(bool_or(r ? 'more') FILTER (WHERE o < (SELECT count(*) FROM %1$s)), false),
				coalesce(array_agg((r ->> %2$L)::bigint ORDER BY o), '{}')
			FROM %1$s WITH ORDINALITY AS t(r, o)$q$, call,
			CASE what WHEN 'history' THEN 'seq' WHEN 'catch_up' THEN 'cursor' ELSE 'chat_id' END)
			INTO n, bytes, last_more, other_more, keys;
		EXIT WHEN n = 0;
		RETURN NEXT;
		-- the next page starts after the last row of this one
		EXECUTE format('SELECT r ->> %L FROM %s WITH ORDINALITY AS t(r, o) ORDER BY o DESC LIMIT 1',
			CASE what WHEN 'history' THEN 'seq' ELSE 'cursor' END, call) INTO pos;
	END LOOP;
END
$$;

-- every key of a walk, in order
CREATE FUNCTION pg_temp.walk_keys(what text, u bigint, c bigint, page int) RETURNS bigint[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(k ORDER BY p, o), '{}')
	FROM (SELECT row_number() OVER () AS p, keys FROM pg_temp.walk(what, u, c, page)) w,
		unnest(w.keys) WITH ORDINALITY AS x(k, o)
$$;

-- The setting: its default, and the values refused (with 22023, the range named).
SELECT is(current_setting('chat.page_max_bytes'), '256kB', 'chat.page_max_bytes is 256kB by default');
SELECT is(pg_temp.outcome('SET LOCAL chat.page_max_bytes = 0'),
	'22023: 0 B is outside the valid range for parameter "chat.page_max_bytes" (4096 .. 1048576)',
	'a budget of 0 is refused, with the range');
SELECT is((pg_temp.try('SET LOCAL chat.page_max_bytes = 4095')).state, '22023', 'a budget under 4 kB is refused');
SELECT is((pg_temp.try($$SET LOCAL chat.page_max_bytes = '2MB'$$)).state, '22023', 'a budget over 1 MB is refused');
SELECT is((pg_temp.try($$SET LOCAL chat.page_max_bytes = '-1'$$)).state, '22023', 'a negative budget is refused');
SELECT is((pg_temp.try($$SET LOCAL chat.page_max_bytes = 'lots'$$)).state, '22023', 'a budget that is not a size is refused');
SELECT is(current_setting('chat.page_max_bytes'), '256kB', 'and the refused values changed nothing');

-- 60 messages of 4,000 control characters: about 24 kB each as JSON.
SELECT chat.open_chat(4501, 'direct', NULL, 4502) AS c \gset
SELECT is((SELECT count(chat.send_message(4501, :c, repeat(chr(1), 3990) || lpad(i::text, 10, '0')))
	FROM generate_series(1, 60) i), 60::bigint, 'set-up: 60 messages of 4,000 control characters');
SELECT ok((SELECT octet_length(h::text) BETWEEN 24000 AND 24400 FROM chat.history(4502, :c, NULL, 1) h),
	'one such message is about 24 kB of JSON');

-- Default budget: a page of 50 stops at 10 rows (242 kB), the 11th would pass 256 kB.
SELECT is((SELECT n FROM pg_temp.walk('history', 4502, :c, 50) LIMIT 1), 10,
	'history: a page of 50 such messages stops at 10 rows');
SELECT ok((SELECT bytes <= 262144 AND bytes + 24400 > 262144 FROM pg_temp.walk('history', 4502, :c, 50) LIMIT 1),
	'history: the page holds at most the budget, and one more row would pass it');
SELECT is((SELECT count(*) FROM chat.history(4502, :c, NULL, 50) h WHERE h ? 'more'), 1::bigint,
	'history: one row of the page says more');
SELECT is((SELECT (h ->> 'seq')::int FROM chat.history(4502, :c, NULL, 50) h WHERE h ? 'more'), 51,
	'history: the last one (seq 51), "more": true');
SELECT is((SELECT h -> 'more' FROM chat.history(4502, :c, NULL, 50) h WHERE h ? 'more'), 'true'::jsonb,
	'history: more is true');

-- Walking: every message once, in order; every page within the budget; only the last page without more.
SELECT is(pg_temp.walk_keys('history', 4502, :c, 50), ARRAY(SELECT generate_series(60, 1, -1))::bigint[],
	'history: walking pages of 50 under the budget gives 60..1, nothing skipped or repeated');
SELECT is(ARRAY(SELECT n FROM pg_temp.walk('history', 4502, :c, 50)), '{10,10,10,10,10,10}'::int[],
	'history: six pages of 10');
SELECT ok((SELECT bool_and(bytes <= 262144) FROM pg_temp.walk('history', 4502, :c, 50)), 'history: no page over the budget');
SELECT is(ARRAY(SELECT last_more FROM pg_temp.walk('history', 4502, :c, 50)), '{t,t,t,t,t,f}'::bool[],
	'history: every page but the last says more');
SELECT ok((SELECT NOT bool_or(other_more) FROM pg_temp.walk('history', 4502, :c, 50)), 'history: only last rows say more');
SELECT is(ARRAY(SELECT n FROM pg_temp.walk('history', 4502, :c, 7)), '{7,7,7,7,7,7,7,7,4}'::int[],
	'history: pages of 7 fit the budget: page_size decides, no row says more');
SELECT ok((SELECT NOT bool_or(last_more OR other_more) FROM pg_temp.walk('history', 4502, :c, 7)),
	'history: no more on pages that page_size ended');

SELECT is(pg_temp.walk_keys('catch_up', 4502, :c, 500), ARRAY(SELECT generate_series(1, 60))::bigint[],
	'catch_up: walking from 0 gives cursors 1..60, nothing skipped or repeated');
SELECT is(ARRAY(SELECT n FROM pg_temp.walk('catch_up', 4502, :c, 500)), '{10,10,10,10,10,10}'::int[],
	'catch_up: pages of 10 under the default budget');
SELECT is(ARRAY(SELECT last_more FROM pg_temp.walk('catch_up', 4502, :c, 500)), '{t,t,t,t,t,f}'::bool[],
	'catch_up: every page but the last says more');
SELECT ok((SELECT bool_and(bytes <= 262144) FROM pg_temp.walk('catch_up', 4502, :c, 500)), 'catch_up: no page over the budget');

-- Edits of old messages come after, in their cursor order, and continue exactly too.
SELECT chat.edit_message(4501, :c, s, repeat(chr(2), 4000)) FROM unnest('{3,1,40,2}'::bigint[]) s \g /dev/null
SELECT is(ARRAY(SELECT (m ->> 'seq')::int FROM chat.catch_up(4502, :c, 60, 500) m),
	'{3,1,40,2}'::int[], 'catch_up after 60: the four edits, in the order made');

-- A smaller budget: fewer rows, still exact, still within it.
SET LOCAL chat.page_max_bytes = '100kB';
SELECT is(ARRAY(SELECT n FROM pg_temp.walk('history', 4502, :c, 50) LIMIT 2), '{4,4}'::int[],
	'history at 100kB: pages of 4');
SELECT ok((SELECT bool_and(bytes <= 102400) FROM pg_temp.walk('history', 4502, :c, 50)), 'history at 100kB: no page over it');
SELECT is(pg_temp.walk_keys('history', 4502, :c, 50), ARRAY(SELECT generate_series(60, 1, -1))::bigint[],
	'history at 100kB: 60..1 exactly');
SELECT is(pg_temp.walk_keys('catch_up', 4502, :c, 500), '{4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64}'::bigint[],
	'catch_up at 100kB: every cursor once, edited messages at their new cursor');

-- A budget smaller than one row: one row per page, so a page always moves on.
SET LOCAL chat.page_max_bytes = 4096;
SELECT is(ARRAY(SELECT DISTINCT n FROM pg_temp.walk('history', 4502, :c, 50)), '{1}'::int[],
	'a budget under one row: history pages of exactly one row');
SELECT is(pg_temp.walk_keys('history', 4502, :c, 50), ARRAY(SELECT generate_series(60, 1, -1))::bigint[],
	'and walking them still gives 60..1');
SELECT is(ARRAY(SELECT DISTINCT n FROM pg_temp.walk('catch_up', 4502, :c, 500)), '{1}'::int[],
	'a budget under one row: catch_up pages of exactly one row');
SELECT is(cardinality(pg_temp.walk_keys('catch_up', 4502, :c, 500)), 60, 'and walking them gives all 60 changes');

-- Small messages: the budget does not cut a page of 1,000 short ones.
RESET chat.page_max_bytes;
SELECT chat.open_chat(4503, 'direct', NULL, 4504) AS small \gset
SELECT chat.send_message(4503, :small, 'a short message ' || i) FROM generate_series(1, 1000) i \g /dev/null
SELECT is((SELECT count(*) FROM chat.history(4504, :small, NULL, 1000) h WHERE NOT h ? 'more'), 1000::bigint,
	'1,000 short messages: one page of 1,000, no more');
SELECT is((SELECT count(*) FROM chat.catch_up(4504, :small, 0, 1000)), 1000::bigint, 'catch_up: the same');

-- list_chats: 12 chats whose previews are 200 control characters (about 1.9 kB a row).
SELECT chat.send_message(4510, chat.open_chat(4510, 'direct', NULL, 4520 + i), repeat(chr(3), 300))
	FROM generate_series(1, 12) i \g /dev/null
SELECT array_agg((r ->> 'chat_id')::bigint) AS all_chats FROM chat.list_chats(4510, NULL, 50) r \gset
SET LOCAL chat.page_max_bytes = 4096;
SELECT is(ARRAY(SELECT n FROM pg_temp.walk('list', 4510, NULL, 50)), '{2,2,2,2,2,2}'::int[],
	'list_chats at 4 kB: pages of 2 chats');
SELECT ok((SELECT bool_and(bytes <= 4096) FROM pg_temp.walk('list', 4510, NULL, 50)), 'list_chats: no page over the budget');
SELECT is(ARRAY(SELECT last_more FROM pg_temp.walk('list', 4510, NULL, 50)), '{t,t,t,t,t,f}'::bool[],
	'list_chats: every page but the last says more');
SELECT is(pg_temp.walk_keys('list', 4510, NULL, 50), :'all_chats'::bigint[], 'list_chats: every chat once, in order');
SELECT is(cardinality(pg_temp.walk_keys('list', 4510, NULL, 50)), 12, 'list_chats: all 12');

SELECT * FROM finish();
ROLLBACK;
