#!/usr/bin/env bash
# Partition maintenance benchmark: chat.maintain (and CALL
# chat.maintain_procedure) against pg_partman's run_maintenance, on the same
# table shape and data (BENCH_ROWS messages over 24 months), in one run.
#
# For each run: the time it takes to make 3 partitions and drop 3, and the
# longest latency a concurrent writer (pgbench, --rate, --log) sees while it
# runs. Scenario A: writers only. Scenario B: writers plus a long reporting
# query through the partitioned table started just before maintenance (the
# case of a lock request queued behind a long query).
#
#   bench/maintenance.sh            10 million rows (loading takes minutes)
#   SMALL=1 bench/maintenance.sh    300 000 rows, for a quick run
# Settings: BENCH_ROWS, BENCH_PORT (54620), BENCH_SECONDS (20), BENCH_RATE
# (transactions/s, 400), BENCH_CLIENTS (4), PGBIN. Results: a Markdown table
# on stdout and in bench/results/. Everything runs on a private cluster on
# 127.0.0.1 and is bounded in time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGBIN
port=${BENCH_PORT:-54620}
if [ "${SMALL:-0}" = 1 ]; then rows=${BENCH_ROWS:-300000}; else rows=${BENCH_ROWS:-10000000}; fi
secs=${BENCH_SECONDS:-20}
rate=${BENCH_RATE:-400}
clients=${BENCH_CLIENTS:-4}
results=$root/bench/results
mkdir -p "$results"
work=$(mktemp -d /tmp/chat-bench.XXXXXX)
chmod 755 "$work"
data=$work/data
logs=$work/logs   # pgbench runs as the postgres OS user and writes here
mkdir -p "$logs"
[ "$(id -u)" -ne 0 ] || chown postgres "$logs"

cleanup() {
	"$root/test/cluster.sh" stop "$data" >/dev/null 2>&1 || true
	[ -n "${KEEP_BENCH:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
sql() { local db=$1; shift; as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U postgres -d "$db" "$@"; }
val() { sql "$1" -At -c "$2"; }
now_ms() { date +%s%3N; }

sharedir=$("$PGBIN/pg_config" --sharedir)
if [ ! -f "$sharedir/extension/pg_partman.control" ]; then
	echo "pg_partman is not installed in $sharedir (Debian: postgresql-15-partman)" >&2
	exit 1
fi

echo "== cluster on port $port, $rows messages over 24 months" >&2
"$root/test/cluster.sh" start "$data" "$port"
sql postgres <<'SQL'
ALTER SYSTEM SET chat.maintenance_interval = 0;     -- no worker: runs are started by hand
ALTER SYSTEM SET autovacuum = off;                   -- no vacuum in the middle of a measurement
ALTER SYSTEM SET max_wal_size = '8GB';
ALTER SYSTEM SET checkpoint_timeout = '30min';
ALTER SYSTEM SET timezone = 'UTC';
-- every lock wait over 5 ms is logged with its length, and by whom
ALTER SYSTEM SET log_lock_waits = on;
ALTER SYSTEM SET deadlock_timeout = '5ms';
ALTER SYSTEM SET log_line_prefix = '%m [%p] %a ';
SELECT pg_reload_conf();
SQL

# One moment for both data sets: months M-23 .. M0 (M0 = this month).
start=$(val postgres "SELECT date_trunc('month', now(), 'UTC') - interval '23 months'")
stop=$(val postgres "SELECT now()")

# chat: CREATE EXTENSION makes this month, maintain() the 23 before it.
sql postgres -c "CREATE DATABASE bench_chat"
sql bench_chat <<SQL
SET chat.premake_months = 0;
CREATE EXTENSION chat;
SET chat.premake_months = 23;
SELECT chat.maintain('$start') IS NOT NULL;
CREATE SEQUENCE public.bench_seq START 1000000000;
ALTER DATABASE bench_chat SET search_path = chat, public;
SQL

# pg_partman: the same table and indexes, monthly, 3 months made ahead.
sql postgres -c "CREATE DATABASE bench_partman"
sql bench_partman <<SQL
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE TABLE public.messages (
	chat_id bigint NOT NULL, seq bigint NOT NULL, rev bigint NOT NULL, sender_id bigint NOT NULL,
	body text NOT NULL, client_id uuid, created_at timestamptz NOT NULL, edited_at timestamptz,
	deleted boolean NOT NULL DEFAULT false, n_attachments smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (chat_id, seq, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX messages_rev ON public.messages (chat_id, rev);
CREATE INDEX messages_client_id ON public.messages (chat_id, client_id) WHERE client_id IS NOT NULL;
SELECT partman.create_parent('public.messages', 'created_at', 'native', 'monthly',
	p_premake := 3, p_start_partition := '$start', p_jobmon := false);
CREATE SEQUENCE public.bench_seq START 1000000000;
SQL

load() {
	local db=$1 table=$2 chunk=1000000 from=0
	while [ "$from" -lt "$rows" ]; do
		local to=$(( from + chunk < rows ? from + chunk : rows ))
		sql "$db" -c "SET synchronous_commit = off;
			INSERT INTO $table (chat_id, seq, rev, sender_id, body, created_at)
			SELECT i % 50000 + 1, i / 50000 + 1, i / 50000 + 1, i % 50000 + 1, 'message ' || md5(i::text),
			       '$start'::timestamptz + ('$stop'::timestamptz - '$start'::timestamptz) * (i::float8 / $rows)
			FROM generate_series($from, $to - 1) i"
		from=$to
		echo "   $db: $from rows" >&2
	done
	sql "$db" -c "VACUUM ANALYZE $table"
}
t=$(now_ms); load bench_chat chat.messages; echo "   loaded chat in $(( ($(now_ms) - t) / 1000 )) s" >&2
t=$(now_ms); load bench_partman public.messages; echo "   loaded partman in $(( ($(now_ms) - t) / 1000 )) s" >&2

# Drop pg_partman's three premade months, so that both runs have 3 to make.
for p in $(val bench_partman "SELECT partition_schemaname || '.' || partition_tablename FROM partman.show_partitions('public.messages', 'DESC') LIMIT 3"); do
	sql bench_partman -c "DROP TABLE $p"
done
sql bench_partman -c "UPDATE partman.part_config SET retention = '20 months', retention_keep_table = false WHERE parent_table = 'public.messages'"
sql postgres -c "CHECKPOINT"

nparts() { val "$1" "SELECT count(*) FROM pg_inherits WHERE inhparent = '$2'::regclass"; }
echo "   partitions: chat $(nparts bench_chat chat.messages), pg_partman $(nparts bench_partman public.messages) (each with a default)" >&2

# The same two scripts on both databases (search_path finds chat.messages
# or public.messages): a writer, and a reader of a chat's last page through
# the partitioned table (which locks every partition, the default one too).
cat >"$work/writer.sql" <<'SQL'
\set c random(1, 50000)
INSERT INTO messages (chat_id, seq, rev, sender_id, body, created_at) VALUES (:c, nextval('bench_seq'), 1, :c, 'bench', now());
SQL
cat >"$work/reader.sql" <<'SQL'
\set c random(1, 50000)
SELECT seq, body FROM messages WHERE chat_id = :c ORDER BY seq DESC LIMIT 50;
SQL

# measure NAME DB MAINTENANCE_SQL [reader]: pgbench writers, maintenance in
# the middle; prints one JSON object.
measure() {
	local name=$1 db=$2 maint=$3 reader=${4:-} before after t0 t1 pb offset
	before=$(nparts "$db" messages)
	offset=$(stat -c %s "$data/server.log")
	as_pg "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -c "$clients" -j 2 -T "$secs" -R "$rate" \
		--log --log-prefix="$logs/$name" -f "$work/writer.sql@3" -f "$work/reader.sql@1" "$db" \
		>"$work/pgbench-$name.out" 2>&1 &
	pb=$!
	sleep 5   # the writers run steadily before maintenance starts
	if [ -n "$reader" ]; then
		# a 3-second report through the partitioned table: it holds ACCESS
		# SHARE on every partition until it ends
		sql "$db" -c "SELECT (SELECT count(*) FROM messages WHERE chat_id = 1), pg_sleep(3)" >/dev/null &
		sleep 0.3
	fi
	# the statement sets psql variable report (jsonb text, or empty)
	read -r t0 t1 report < <(sql "$db" -At <<SQL
SET chat.retention_months = 20;
\set report ''
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$maint \gset
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
\echo :t0 :t1 :report
SQL
)
	wait "$pb"
	wait
	after=$(nparts "$db" messages)
	stalls=$(/usr/bin/python3 "$here/maintenance_stalls.py" "$t0" "$t1" "$data/server.log" "$offset" "$logs/$name".*)
	printf '{"run": "%s", "ms": %s, "load": %s, "partitions_before": %s, "partitions_after": %s, "stalls": %s, "report": %s}\n' \
		"$name" "$(/usr/bin/python3 -c "print(round(($t1 - $t0) * 1000))")" "$(cut -d' ' -f1 /proc/loadavg)" \
		"$before" "$after" "$stalls" "${report:-null}"
}

echo "== scenario A: writers only" >&2
# chat runs use `at` to shift by 3 months each time: same work, 3 made, 3 dropped
partman="SELECT partman.run_maintenance('public.messages', p_jobmon := false)"
A1=$(measure partman-A bench_partman "$partman")
A2=$(measure chat-function-A bench_chat "SELECT chat.maintain() AS report")
A3=$(measure chat-procedure-A bench_chat "CALL chat.maintain_procedure(now() + interval '3 months')")
echo "== scenario B: writers and a long reader" >&2
sql bench_partman -c "UPDATE partman.part_config SET retention = '17 months' WHERE parent_table = 'public.messages'"
sql bench_partman -c "UPDATE partman.part_config SET premake = 6 WHERE parent_table = 'public.messages'"
B1=$(measure partman-B bench_partman "$partman" reader)
B2=$(measure chat-function-B bench_chat "SELECT chat.maintain(now() + interval '6 months') AS report" reader)
B3=$(measure chat-after-B bench_chat "SELECT chat.maintain(now() + interval '6 months') AS report")

stamp=$(date -u +%Y%m%d-%H%M)
out=$results/maintenance-$stamp.json
printf '%s\n' "$A1" "$A2" "$A3" "$B1" "$B2" "$B3" >"$out"
/usr/bin/python3 - "$out" "$rows" "$rate" "$clients" <<'PY'
import json, sys
path, rows, rate, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = [json.loads(l) for l in open(path)]
print("\n%d messages over 24 months; pgbench %s clients at %s tx/s in all, 3 writes (INSERT) to 1 read (last 50 of a chat), through the partitioned table\n" % (rows, clients, rate))
print("Lock wait: the longest a pgbench transaction waited for a lock (server log, log_lock_waits, deadlock_timeout = 5 ms).")
print("Writer / reader: the longest execution of one transaction overlapping the run, and outside it (pgbench --log, latency minus schedule lag).\n")
print("| run | duration | partitions before → after | longest lock wait of a pgbench transaction | worst writer during the run | worst reader during the run | worst writer / reader outside the run | load average (%s CPUs) |" % __import__("os").cpu_count())
print("|---|---:|---|---:|---:|---:|---:|---:|")
for r in runs:
    w, rd = r["stalls"].get("writer", {}), r["stalls"].get("reader", {})
    rep = r.get("report")
    extra = ""
    if isinstance(rep, dict):
        extra = " (made %d, dropped %d, deferred %d)" % (len(rep["created"]), len(rep["dropped"]), len(rep["deferred"]))
    lw = r["stalls"]["lock_waits"]
    wait = "none over 5 ms" if lw["count"] == 0 else "%s ms (%s, %d waits)" % (lw["longest_ms"], lw["mode"], lw["count"])
    print("| %s | %d ms | %s → %s%s | %s | %s ms | %s ms | %s / %s ms | %s |" % (
        r["run"], r["ms"], r["partitions_before"], r["partitions_after"], extra, wait,
        w.get("worst_during_ms"), rd.get("worst_during_ms"), w.get("worst_outside_ms"), rd.get("worst_outside_ms"),
        r["load"]))
PY
echo "(raw results: $out)" >&2
