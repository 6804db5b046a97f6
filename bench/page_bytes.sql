-- Database time of one 1,000-row page request (issue 15, item 3): history
-- and catch_up of 1,000 messages of 4,000 control characters (24 kB of
-- JSON each), and of 1,000 short ones, five times each. Run in an empty
-- database with the extension (docs/benchmarks.md, "Pages bounded in bytes"):
--   psql -X -d DB -f bench/page_bytes.sql | grep -E '^(--|[a-z])|Execution|rows='
\set QUIET on
SELECT chat.open_chat(77001, 'direct', NULL, 77002) AS big \gset
SELECT count(chat.send_message(77001, :big, repeat(chr(1), 4000))) AS sent_big FROM generate_series(1, 1000);
SELECT chat.open_chat(77003, 'direct', NULL, 77004) AS small \gset
SELECT count(chat.send_message(77003, :small, 'hello there, message ' || i)) AS sent_small FROM generate_series(1, 1000) i;
VACUUM ANALYZE;
\echo -- history(page_size 1000), 24 kB messages
SELECT format('EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) SELECT m::text FROM chat.history(77002, %s, NULL, 1000) m', :big) AS q \gset
:q \g
:q \g
:q \g
:q \g
:q \g
\echo -- catch_up(after 0, page_size 1000), 24 kB messages
SELECT format('EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) SELECT m::text FROM chat.catch_up(77002, %s, 0, 1000) m', :big) AS q \gset
:q \g
:q \g
:q \g
:q \g
:q \g
\echo -- history(page_size 1000), short messages
SELECT format('EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) SELECT m::text FROM chat.history(77004, %s, NULL, 1000) m', :small) AS q \gset
:q \g
:q \g
:q \g
:q \g
:q \g
\echo -- bytes of one page
SELECT count(*) AS rows, sum(octet_length(m::text)) AS bytes FROM chat.history(77002, :big, NULL, 1000) m;
