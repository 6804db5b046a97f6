#!/usr/bin/env bash
# Event publication benchmark (make bench, or bench/events.sh alone).
# One run, same data: raw SQL without NOTIFY, raw SQL with pg_notify,
# send_message with chat.event_mode = direct and = deferred, at 1, 4, 16 and
# 64 clients; a LISTEN client (listen_stats) counts what arrives and the
# latency from the event's created_at (stamped in the sending transaction)
# to its receipt. Medians of BENCH_RUNS runs of BENCH_DURATION seconds.
#
# Knobs: BENCH_DURATION (10), BENCH_RUNS (3), BENCH_CLIENTS ("1 4 16 64"),
#        BENCH_CHATS (100000), EVENTS_PORT (55450), PGBIN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
duration=${BENCH_DURATION:-10}
runs=${BENCH_RUNS:-3}
clients=${BENCH_CLIENTS:-"1 4 16 64"}
chats=${BENCH_CHATS:-100000}
port=${EVENTS_PORT:-55450}
out=$here/results
mkdir -p "$out"
work=$(mktemp -d /tmp/chat-bench-events.XXXXXX)
chmod 755 "$work"
data=$work/data
trap '"$top/test/cluster.sh" stop "$data" || true; rm -rf "$work"' EXIT

gcc -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$work/listen_stats" "$here/listen_stats.c" -lpq
gcc -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$work/commit_latency" "$here/commit_latency.c" -lpq
"$top/test/cluster.sh" start "$data" "$port"
"$top/test/cluster.sh" createdb "$data" "$port" bench
psql_b() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U postgres -d bench "$@"; }

echo "generating $chats chats with 24 monthly partitions"
psql_b <<SQL
DO \$\$
DECLARE m date := date_trunc('month', now()) - interval '20 months';
BEGIN
	FOR i IN 0..19 LOOP
		EXECUTE format('CREATE TABLE IF NOT EXISTS chat.%I PARTITION OF chat.messages FOR VALUES FROM (%L) TO (%L)',
			'messages_' || to_char(m + make_interval(months => i), 'YYYY_MM'),
			(m + make_interval(months => i))::timestamptz, (m + make_interval(months => i + 1))::timestamptz);
	END LOOP;
END \$\$;
INSERT INTO chat.chats (kind, context_id, user_a, user_b)
	SELECT 'listing', g, 1000000 + g, 2000000 + g % 1000 FROM generate_series(1, $chats) g;
INSERT INTO chat.members (chat_id, user_id, role, sort_at)
	SELECT chat_id, user_a, 'buyer', created_at FROM chat.chats
	UNION ALL SELECT chat_id, user_b, 'seller', created_at FROM chat.chats;
VACUUM ANALYZE;
SQL

cat >"$work/raw.sql" <<SQL
\set c random(1, $chats)
BEGIN;
UPDATE chat.chats SET last_seq = last_seq + 1, last_rev = last_rev + 1, last_message_at = now() WHERE chat_id = :c RETURNING last_seq AS s \gset
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at) VALUES (:c, :s, :s, 1000000 + :c, 'benchmark message', now());
COMMIT;
SQL
cat >"$work/raw_notify.sql" <<SQL
\set c random(1, $chats)
BEGIN;
UPDATE chat.chats SET last_seq = last_seq + 1, last_rev = last_rev + 1, last_message_at = now() WHERE chat_id = :c RETURNING last_seq AS s \gset
INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at) VALUES (:c, :s, :s, 1000000 + :c, 'benchmark message', now());
SELECT pg_notify('chat_events', format('{"to":[%s,%s],"ev":{"v":1,"type":"message","chat_id":%s,"seq":%s,"message":%s}}', 1000000 + :c, 2000000 + :c % 1000, :c, :s, jsonb_build_object('body', 'benchmark message', 'created_at', clock_timestamp())));
COMMIT;
SQL
cat >"$work/send.sql" <<SQL
\set c random(1, $chats)
SELECT chat.send_message(1000000 + :c, :c, 'benchmark message');
SQL

# run WORKLOAD SCRIPT CLIENTS MODE -> "tps committed events p50 p99"
run_one() {
	local script=$1 n=$2 mode=$3 lst tps txn
	"$work/listen_stats" "host=$data port=$port user=postgres dbname=bench" $((duration + 4)) >"$work/listen.out" &
	lst=$!
	until grep -q listening "$work/listen.out" 2>/dev/null; do sleep 0.05; done
	runuser -u postgres -- env PGOPTIONS="-c chat.event_mode=$mode" \
		pgbench -n -M prepared -h "$data" -p "$port" -U postgres -c "$n" -j 2 -T "$duration" -f "$script" bench >"$work/pgbench.out" 2>&1 || { cat "$work/pgbench.out" >&2; exit 1; }
	wait "$lst"
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench.out")
	txn=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
	# events arriving after the listener stopped would be counted as missing: it waits 4 s past the run
	echo "$tps $txn $(sed -n 's/.*events=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\).*/\1 \2 \3/p' "$work/listen.out")"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

printf "| workload | clients | TPS (median) | notifications delivered / committed | notify/s | latency p50 ms | p99 ms |\n" | tee "$out/events.md"
printf "|---|---:|---:|---:|---:|---:|---:|\n" | tee -a "$out/events.md"
for n in $clients; do
	for w in "raw:raw.sql:direct" "raw+pg_notify:raw_notify.sql:direct" "send_message direct:send.sql:direct" "send_message deferred:send.sql:deferred"; do
		IFS=: read -r name script mode <<<"$w"
		: >"$work/cell"
		for r in $(seq "$runs"); do run_one "$work/$script" "$n" "$mode" >>"$work/cell"; done
		tps=$(awk '{print $1}' "$work/cell" | median)
		ratio=$(awk '{ if ($2 > 0) printf "%.4f\n", $3 / $2; else print 0 }' "$work/cell" | median)
		nps=$(awk -v d="$duration" '{printf "%.0f\n", $3 / d}' "$work/cell" | median)
		p50=$(awk '{printf "%.2f\n", $4 / 1000}' "$work/cell" | median)
		p99=$(awk '{printf "%.2f\n", $5 / 1000}' "$work/cell" | median)
		[ "$name" = raw ] && { ratio="-"; nps="-"; p50="-"; p99="-"; }
		printf "| %s | %s | %.0f | %s | %s | %s | %s |\n" "$name" "$n" "$tps" "$ratio" "$nps" "$p50" "$p99" | tee -a "$out/events.md"
	done
done

# Light load: acknowledged commit -> event at the listener, 200 sends/s.
printf "\n| mode | sends | rate/s | ack -> event p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n" | tee -a "$out/events.md"
for mode in deferred direct; do
	: >"$work/cell"
	for r in $(seq "$runs"); do
		"$work/commit_latency" "host=$data port=$port user=postgres dbname=bench" "$mode" 1000 200 >>"$work/cell"
	done
	p50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' "$work/cell" | awk '{printf "%.2f\n", $1 / 1000}' | median)
	p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' "$work/cell" | awk '{printf "%.2f\n", $1 / 1000}' | median)
	max=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' "$work/cell" | awk '{printf "%.2f\n", $1 / 1000}' | median)
	printf "| %s | 1000 | 200 | %s | %s | %s |\n" "$mode" "$p50" "$p99" "$max" | tee -a "$out/events.md"
done
