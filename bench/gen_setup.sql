-- Benchmark data, step 1 of 3: parameters, the 20 older monthly partitions,
-- chats and members. Run as superuser in a database with the chat extension.
-- psql variables: nchats, nmsgs, seller_chats, months (older partitions).
--
-- Every chat's shape comes from bench.gen_chats, computed from the chat id
-- with deterministic hashes, so chats, members and messages agree with each
-- other without reading messages back, and bench/reset.sql can restore the
-- generated state after a benchmark has sent messages.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

CREATE TABLE bench.meta (
	nchats        int NOT NULL,
	nmsgs         bigint NOT NULL,       -- target; the real count is in messages_loaded
	seller_chats  int NOT NULL,          -- chats of the big seller (user 1)
	nsellers      int NOT NULL,          -- other sellers: users 2 .. nsellers + 1
	nbuyers       int NOT NULL,          -- buyers: users 1000000 .. 1000000 + nbuyers - 1
	months        int NOT NULL,          -- older monthly partitions created here
	t0            timestamptz NOT NULL,  -- start of the oldest partition
	t1            timestamptz NOT NULL,  -- generation time: every message is older
	messages_loaded bigint,
	ext_md5       text NOT NULL,         -- the extension's install script the data was made with
	complete      boolean NOT NULL DEFAULT false
);

INSERT INTO bench.meta (ext_md5, nchats, nmsgs, seller_chats, nsellers, nbuyers, months, t0, t1)
SELECT :'ext_md5', :nchats, :nmsgs, :seller_chats,
	greatest(1, (:nchats - :seller_chats) / 9),
	greatest(1, :nchats / 2),
	:months,
	date_trunc('month', now()) - make_interval(months => :months),
	date_trunc('second', now());

-- A uniform number in [0, 1) from (x, k), the same on every run.
CREATE FUNCTION bench.u(x bigint, k bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(x, k) & 140737488355327)::float8 / 140737488355328.0 $$;

-- The older monthly partitions the extension does not create.
DO $$
DECLARE
	m      int := (SELECT months FROM bench.meta);
	cur    timestamptz := date_trunc('month', now());
	lo     timestamptz;
	name   text;
BEGIN
	FOR i IN 1..m LOOP
		lo := cur - make_interval(months => i);
		name := 'messages_' || to_char(lo, 'YYYY_MM');
		IF to_regclass('chat.' || name) IS NULL THEN
			EXECUTE format('CREATE TABLE chat.%I PARTITION OF chat.messages FOR VALUES FROM (%L) TO (%L)',
				name, lo, lo + interval '1 month');
		END IF;
	END LOOP;
END
$$;

-- The shape of every chat. Message s (1..n) of a chat is stamped
--   start_at + span * (s-1)/(n-1) + s µs
-- so stamps rise strictly with seq; odd seqs are the buyer's, even ones the
-- seller's. Chats start anywhere in [t0, t1) and last span = u³ of the time
-- left (many short chats, a few that run for months).
-- Message counts: 1 + a share of the nmsgs - nchats others by uniform
-- weights, rounded on the running sum so the total is exactly nmsgs.
CREATE TABLE bench.gen_chats AS
WITH p AS (SELECT * FROM bench.meta),
	w AS (
		SELECT g AS chat_id, p.*,
			sum(bench.u(g, 1)) OVER (ORDER BY g) AS cum,
			sum(bench.u(g, 1)) OVER () AS total
		FROM p, generate_series(1, p.nchats) g
	),
	c AS (
		SELECT w.*,
			1 + round((nmsgs - nchats) * cum / total)::int
			  - round((nmsgs - nchats) * coalesce(lag(cum) OVER (ORDER BY chat_id), 0) / total)::int AS n,
			t0 + (t1 - interval '1 hour' - t0) * bench.u(chat_id, 2) AS start_at,
			bench.u(chat_id, 3) AS u_span,
			bench.u(chat_id, 4) AS u_read
		FROM w
	)
SELECT chat_id, n,
	CASE WHEN chat_id % (nchats / seller_chats) = 0 AND chat_id / (nchats / seller_chats) <= seller_chats
		THEN 1 ELSE 2 + chat_id % nsellers END::bigint AS seller,
	(1000000 + chat_id % nbuyers)::bigint AS buyer,
	start_at,
	(t1 - interval '1 minute' - start_at) * (u_span ^ 3) AS span,
	u_read
FROM c;
ALTER TABLE bench.gen_chats ADD PRIMARY KEY (chat_id);

-- Derived per-chat values: last message stamp, last sender, read cursors.
CREATE VIEW bench.gen_state AS
SELECT g.chat_id, g.n, g.seller, g.buyer, g.start_at,
	g.start_at + g.span * ((g.n - 1)::float8 / greatest(g.n - 1, 1)) + make_interval(secs => g.n / 1e6) AS last_at,
	CASE WHEN g.n % 2 = 1 THEN g.buyer ELSE g.seller END AS last_sender,
	-- the last sender has read everything; the other side is 0 or 1 behind
	CASE WHEN g.n % 2 = 1 THEN g.n ELSE g.n - (g.u_read < 0.5)::int END AS buyer_read,
	CASE WHEN g.n % 2 = 0 THEN g.n ELSE g.n - (g.u_read < 0.5)::int END AS seller_read
FROM bench.gen_chats g;

-- The body of message s of chat c (bench/gen_messages.sql uses the same).
CREATE FUNCTION bench.body(c bigint, s bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'message ' || s || ': ' || left('Hello, is this still available? I could pick it up tomorrow '
	'afternoon if that suits you. Would you take a little less for it, and does it come with the '
	'original box and charger? Thanks a lot, see you soon!', 12 + ((c * 7 + s * 13) % 150)::int) $$;

INSERT INTO chat.chats (chat_id, kind, context_id, user_a, user_b, created_at,
	last_seq, last_rev, last_message_at, last_sender_id, last_preview, last_deleted)
OVERRIDING SYSTEM VALUE
SELECT chat_id, 'listing', 5000000 + chat_id, buyer, seller, start_at,
	n, n, last_at, last_sender, left(bench.body(chat_id, n), 200), false
FROM bench.gen_state
ORDER BY chat_id;
SELECT setval(pg_get_serial_sequence('chat.chats', 'chat_id'), (SELECT nchats FROM bench.meta));

INSERT INTO chat.members (chat_id, user_id, role, read_seq, unread, sort_at)
SELECT chat_id, buyer, 'buyer', buyer_read, n - buyer_read, last_at FROM bench.gen_state
UNION ALL
SELECT chat_id, seller, 'seller', seller_read, n - seller_read, last_at FROM bench.gen_state
ORDER BY 1, 2;
