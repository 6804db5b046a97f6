#!/usr/bin/env bash
# Benchmark: a history page of 50 messages with 2 attachments each against a
# page of 50 messages without attachments, in one run on one cluster.
#  1. pgbench over loopback TCP, one client, prepared protocol; the two pages
#     alternate (and alternate which goes first) for ROUNDS rounds of
#     SECONDS_PER_RUN seconds; medians and the fastest round are reported.
#  2. bench/cpu_per_call.py: the server CPU time per page (from
#     /proc/<backend>/schedstat) in one session, CPU_ROUNDS alternating
#     rounds of CPU_CALLS calls, because wall-clock rates on a shared
#     machine move with whatever else runs.
# Target: the page with attachments takes at most 1.3 times as long.
# Bounded: about 2 * ROUNDS * SECONDS_PER_RUN seconds plus a minute or two.
#   bench/attachments.sh            (make install first; PGBIN as for test/cluster.sh)
# Environment: BENCH_PORT (54780), ROUNDS (7), SECONDS_PER_RUN (8),
# CPU_ROUNDS (30), CPU_CALLS (200), OTHER_ATTACHMENTS (200000 rows of other
# chats, so the index is not tiny).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
port=${BENCH_PORT:-54780}
rounds=${ROUNDS:-7}
secs=${SECONDS_PER_RUN:-8}
cpu_rounds=${CPU_ROUNDS:-30}
cpu_calls=${CPU_CALLS:-200}
others=${OTHER_ATTACHMENTS:-200000}
dir=$(mktemp -d /tmp/chat-bench-att.XXXXXX)
chmod 755 "$dir"
data=$dir/data
mkdir -p "$root/bench/results"
out=$root/bench/results/attachments-$(date -u +%Y%m%dT%H%M%SZ).txt

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	PGBIN=$PGBIN "$root/test/cluster.sh" stop "$data" || true
	rm -rf "$dir"
}
trap cleanup EXIT

# a port of the range may still be held (TIME_WAIT of an earlier run): try a few
for try in 0 1 2 3 4; do
	if PGBIN=$PGBIN "$root/test/cluster.sh" start "$data" "$((port + try))" 2>/dev/null; then
		port=$((port + try))
		break
	fi
	PGBIN=$PGBIN "$root/test/cluster.sh" stop "$data" || true
	rm -rf "$data"
	[ "$try" = 4 ] && { echo "could not start a cluster on ports $port-$((port + 4))" >&2; exit 1; }
done
PGBIN=$PGBIN "$root/test/cluster.sh" createdb "$data" "$port" bench
psql_b() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U postgres -d bench "$@"; }

echo "== set-up: two chats of 50 messages (one with 2 attachments each), $others other attachments"
psql_b <<SQL
SELECT chat.configure_storage('{"endpoint": "http://127.0.0.1:9", "bucket": "bench",
	"access_key": "AK", "secret_key": "SK"}') IS NOT NULL AS configured;
-- background: other chats' attachments, so the index has realistic depth
SELECT chat.open_chat(900000 + g, 'listing', g, 800000) IS NOT NULL FROM generate_series(1, 200) g \g /dev/null
INSERT INTO chat.attachments (chat_id, uploader_id, object_key, file_name, content_type, size, message_seq, position)
SELECT c.chat_id, 800000, 'chat/' || c.chat_id || '/' || md5(g::text), 'photo-' || g || '.jpg', 'image/jpeg', 100000,
       g / 2 + 1, g % 2
FROM generate_series(0, $others - 1) g
JOIN chat.chats c ON c.context_id = 1 + g % 200 AND c.kind = 'listing' AND c.user_b = 800000;
DO \$\$
DECLARE
	att bigint := chat.open_chat(1, 'listing', 777001, 2);
	plain bigint := chat.open_chat(1, 'listing', 777002, 2);
	a1 bigint; a2 bigint;
BEGIN
	FOR i IN 1..50 LOOP
		a1 := chat.attachment_upload(1, att, 'IMG_' || i || '_a.jpg', 'image/jpeg', 2000000 + i) ->> 'attachment_id';
		a2 := chat.attachment_upload(1, att, 'IMG_' || i || '_b.jpg', 'image/jpeg', 2100000 + i) ->> 'attachment_id';
		PERFORM chat.send_message(1, att, 'Here are two more photos of the bike, number ' || i, NULL, ARRAY[a1, a2]);
		PERFORM chat.send_message(1, plain, 'Here are two more photos of the bike, number ' || i);
	END LOOP;
END
\$\$;
VACUUM ANALYZE;
SQL
att=$(psql_b -tAc "SELECT chat_id FROM chat.chats WHERE context_id = 777001")
plain=$(psql_b -tAc "SELECT chat_id FROM chat.chats WHERE context_id = 777002")
check=$(psql_b -tAc "SELECT sum(jsonb_array_length(h -> 'attachments')) FROM chat.history(2, $att, NULL, 50) h")
[ "$check" = 100 ] || { echo "expected 100 attachments on the page, got $check" >&2; exit 1; }

echo "SELECT chat.history(2, $att, NULL, 50);" >"$dir/att.sql"
echo "SELECT chat.history(2, $plain, NULL, 50);" >"$dir/plain.sql"
chmod 644 "$dir"/*.sql

# One pgbench run; prints transactions per second.
run() {
	as_pg "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -T "$secs" -h 127.0.0.1 -p "$port" -U postgres \
		-f "$dir/$1.sql" bench 2>/dev/null | awk '/^tps = / { print $3 }'
}

echo "== pgbench: $rounds rounds of $secs s each, alternating (-c 1 -M prepared over 127.0.0.1)"
run att >/dev/null   # warm-up
run plain >/dev/null
att_tps=() plain_tps=()
for r in $(seq 1 "$rounds"); do
	# alternate which goes first
	if [ $((r % 2)) = 1 ]; then a=$(run att); p=$(run plain); else p=$(run plain); a=$(run att); fi
	att_tps+=("$a")
	plain_tps+=("$p")
	printf 'round %d: with attachments %s tps, without %s tps\n' "$r" "$a" "$p"
done

echo "== server CPU per page: $cpu_rounds rounds of $cpu_calls calls each, alternating, one session"
cpu=$(/usr/bin/python3 "$here/cpu_per_call.py" "host=127.0.0.1 port=$port user=postgres dbname=bench" \
	"$cpu_rounds" "$cpu_calls" "att=SELECT chat.history(2, $att, NULL, 50)" \
	"plain=SELECT chat.history(2, $plain, NULL, 50)")
echo "$cpu" | tail -3

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }
ma=$(median "${att_tps[@]}")
mp=$(median "${plain_tps[@]}")
ba=$(best "${att_tps[@]}")
bp=$(best "${plain_tps[@]}")
{
	echo "chat attachments benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "history page of 50 messages, with 2 attachments each vs without"
	echo
	awk -v a="$ma" -v p="$mp" -v ba="$ba" -v bp="$bp" 'BEGIN {
		printf "| pgbench -c 1 -M prepared, 127.0.0.1 | no attachments | 2 attachments each | ratio |\n|---|---|---|---|\n"
		printf "| median of rounds: ms per page (tps) | %.3f (%.0f) | %.3f (%.0f) | %.2f |\n", 1000 / p, p, 1000 / a, a, p / a
		printf "| fastest round: ms per page (tps) | %.3f (%.0f) | %.3f (%.0f) | %.2f |\n", 1000 / bp, bp, 1000 / ba, ba, bp / ba
	}'
	echo
	echo "$cpu" | tail -3 | sed 's/^/    /'
	echo
	awk -v a="$ma" -v p="$mp" 'BEGIN { r = p / a; printf "pgbench median ratio %.2f, target <= 1.30: %s\n", r, r <= 1.3 ? "met" : "NOT met" }'
} | tee "$out"
echo "(saved in ${out#$root/})"
