#!/usr/bin/env bash
# `make bench`: pgbench of the chat extension against raw SQL doing the same
# work, on a private PostgreSQL 15 cluster (loopback only, fsync on).
# docs/benchmarks.md explains the workloads and how to read the results.
#
# Knobs (environment):
#   BENCH_SMALL=1        10,000 chats / 200,000 messages instead of 100,000 / 10 million
#   BENCH_REUSE=1        keep the generated data of an earlier run if it is complete
#   BENCH_DURATION=10    measured seconds per pgbench run
#   BENCH_RAMP=N         seconds run before the measured ones and not counted:
#                        new connections fault in shared memory and fill their
#                        caches first (default 15 for history, 5 for the others)
#   BENCH_RUNS=3         runs per workload and client count (medians are reported)
#   BENCH_CLIENTS="1 4 16 64"
#   BENCH_WORKLOADS="history list_chats send"
#   BENCH_WARMUP=5       seconds of unrecorded warm-up per variant (0: none)
#   BENCH_SHARED_BUFFERS=4GB  the data set (2.7 GB) fits; test/cluster.sh's 512MB does not
#   BENCH_PORT=55440     port of the private cluster (127.0.0.1)
#   BENCH_DIR=/tmp/chat-bench-$BENCH_PORT   its data directory, kept for BENCH_REUSE
#   BENCH_CLEAN=1        delete that directory at the end
#   BENCH_LOAD_JOBS=2    parallel sessions loading messages
#   BENCH_PGSS=1         diagnostic: load pg_stat_statements (track = all) and
#                        write the top statements to the results (costs throughput)
#   BENCH_KEEP_LOGS=1    keep pgbench's per-transaction logs
#   BENCH_SEND_FULL=1    add the variant "raw SQL doing all of send_message's work"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PATH="$PGBIN:$PATH"

port=${BENCH_PORT:-55440}
dir=${BENCH_DIR:-${TMPDIR:-/tmp}/chat-bench-$port}
small=${BENCH_SMALL:-0}
reuse=${BENCH_REUSE:-0}
duration=${BENCH_DURATION:-10}
ramp_of() { # workload
	if [ -n "${BENCH_RAMP:-}" ]; then echo "$BENCH_RAMP"; elif [ "$1" = history ]; then echo 15; else echo 5; fi
}
shared_buffers=${BENCH_SHARED_BUFFERS:-4GB}
runs=${BENCH_RUNS:-3}
clients=${BENCH_CLIENTS:-"1 4 16 64"}
workloads=${BENCH_WORKLOADS:-"history list_chats send"}
warmup=${BENCH_WARMUP:-5}
load_jobs=${BENCH_LOAD_JOBS:-2}
pgss=${BENCH_PGSS:-0}
months=20
if [ "$small" = 1 ]; then
	nchats=10000 nmsgs=200000 seller_chats=1000 db=chat_bench_small
else
	nchats=100000 nmsgs=10000000 seller_chats=10000 db=chat_bench
fi

# The exact command, for the report.
command="bench/run.sh"
for v in $(compgen -e | grep '^BENCH_' | sort -r); do
	val=${!v}
	case $val in *[!A-Za-z0-9_.,/=-]* | '') val="'$val'" ;; esac
	command="$v=$val $command"
done

stamp=$(date +%Y%m%d-%H%M%S)
out="$here/results/$stamp"
mkdir -p "$out/raw"
ln -sfn "$stamp" "$here/results/latest"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
psql_db() { timeout -k 10 "${PSQL_TIMEOUT:-3600}" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

cleanup() {
	status=$?
	trap - EXIT INT TERM
	if [ $status -ne 0 ] && [ -f "$dir/server.log" ]; then
		echo "--- last lines of the server log ($dir/server.log) ---" >&2
		tail -n 30 "$dir/server.log" >&2 || true
	fi
	log "stopping the cluster in $dir"
	"$root/test/cluster.sh" stop "$dir" || true
	if [ "${BENCH_CLEAN:-0}" = 1 ]; then
		rm -rf "$dir"
	else
		log "data kept in $dir (BENCH_REUSE=1 reuses it, BENCH_CLEAN=1 or rm -rf deletes it)"
	fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- cluster
log "cluster: $dir on 127.0.0.1:$port"
"$root/test/cluster.sh" start "$dir" "$port"
libs="'chat'"
[ "$pgss" = 1 ] && libs="'chat', 'pg_stat_statements'"
# Checkpoints are taken between runs, not at random inside one; the load
# needs room for its WAL; the data set fits in shared buffers. Everything
# else (fsync, synchronous_commit, ...) stays as test/cluster.sh sets it.
psql_db -d postgres <<SQL
ALTER SYSTEM RESET ALL;
ALTER SYSTEM SET shared_buffers = '$shared_buffers';
ALTER SYSTEM SET shared_preload_libraries = $libs;
ALTER SYSTEM SET max_wal_size = '8GB';
ALTER SYSTEM SET checkpoint_timeout = '30min';
ALTER SYSTEM SET maintenance_work_mem = '512MB';
SELECT pg_reload_conf();
SQL
# Always restart: the settings take effect and the chat library installed
# now (make install) is the one preloaded and measured.
log "cluster: restarting (shared_buffers = '$shared_buffers', shared_preload_libraries = $libs)"
"$root/test/cluster.sh" stop "$dir"
"$root/test/cluster.sh" start "$dir" "$port"
libdir=$(psql_db -d postgres -tAc "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")
sharedir=$(psql_db -d postgres -tAc "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
so_md5=$(md5sum "$libdir/chat.so" | cut -c1-12)
# other checkouts on the same machine install into the same directory
if [ -f "$root/chat.so" ] && [ "$(md5sum "$root/chat.so" | cut -c1-12)" = "$so_md5" ]; then
	so_origin="this tree's build"
else
	so_origin="NOT this tree's build (installed from elsewhere since make install?)"
	log "warning: the installed chat.so is not $root/chat.so"
fi
# the extension's install script: data made with another one is regenerated
ext_md5=$(cat "$sharedir"/extension/chat--*.sql | md5sum | cut -c1-12)
git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- extension sql 2>/dev/null || git_rev="$git_rev+changes"
if [ "$pgss" = 1 ]; then
	psql_db -d postgres -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
fi

# ---------------------------------------------------------------- data
have_data=no
if [ "$reuse" = 1 ] && [ -n "$(psql_db -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
	if [ "$(psql_db -d "$db" -tAc "SELECT to_regclass('bench.meta') IS NOT NULL
			AND EXISTS (SELECT FROM bench.meta WHERE complete AND nchats = $nchats
				AND nmsgs = $nmsgs AND seller_chats = $seller_chats AND to_jsonb(meta)->>'ext_md5' = '$ext_md5')")" = t ]; then
		have_data=yes
	else
		log "data: $db was made with other parameters or another version of the extension: regenerating"
	fi
fi

if [ $have_data = yes ]; then
	log "data: reusing $db"
	# messages sent by earlier runs are removed and the summaries restored
	msg=$(psql_db -d "$db" -tA -f "$here/reset.sql" | sed '/^$/d')
	if [ -n "$msg" ]; then
		log "data: $msg; VACUUM ANALYZE"
		psql_db -d "$db" -c "VACUUM (ANALYZE) chat.chats, chat.members, chat.messages"
	fi
else
	log "data: generating $nchats chats, $nmsgs messages in $db"
	t_start=$(date +%s)
	psql_db -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
	"$root/test/cluster.sh" createdb "$dir" "$port" "$db"
	psql_db -d "$db" -v nchats=$nchats -v nmsgs=$nmsgs -v seller_chats=$seller_chats -v months=$months -v ext_md5="$ext_md5" \
		-f "$here/gen_setup.sql"
	log "data: chats and members done ($(($(date +%s) - t_start)) s); loading messages with $load_jobs sessions"
	chunks=$(( nchats >= 50000 ? 50 : 5 ))
	per=$(( (nchats + chunks - 1) / chunks ))
	pids=()
	for ((j = 0; j < load_jobs; j++)); do
		(
			for ((k = j; k < chunks; k += load_jobs)); do
				lo=$(( k * per + 1 )) hi=$(( (k + 1) * per ))
				psql_db -d "$db" -v lo=$lo -v hi=$hi -f "$here/gen_messages.sql"
				log "data: chats $lo..$hi loaded ($(($(date +%s) - t_start)) s)"
			done
		) &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	log "data: verifying"
	psql_db -d "$db" -f "$here/gen_finish.sql"
	log "data: VACUUM ANALYZE"
	psql_db -d "$db" -c "VACUUM (ANALYZE)"
	log "data: done in $(($(date +%s) - t_start)) s"
fi
# Every variant starts from the same warm buffer cache.
log "data: pg_prewarm of the chat tables and indexes"
psql_db -d "$db" -tA >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'chat' AND c.relkind IN ('r', 'i');
SQL
psql_db -d "$db" -c "CHECKPOINT"

# ---------------------------------------------------------------- machine and settings
{
	echo "### Machine and settings"
	echo
	echo "- command: \`$command\` (from \`$root\`)"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), results in \`bench/results/$stamp/\`"
	echo "- extension: commit $git_rev, chat.so md5 $so_md5… ($so_origin), install script md5 $ext_md5…; events: $(psql_db -d "$db" -tAc "SELECT current_setting('chat.event_mode')") mode"
	echo "- CPU: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), RAM $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- $(psql_db -d "$db" -tAc 'SELECT version()')"
	echo "- data: $(psql_db -d "$db" -tAc "SELECT format('%s chats, %s messages in %s monthly partitions + default (%s), big seller with %s chats, database %s',
		nchats, messages_loaded, (SELECT count(*) - 1 FROM pg_inherits WHERE inhparent = 'chat.messages'::regclass),
		to_char(t0, 'YYYY-MM') || ' .. ' || to_char(t1, 'YYYY-MM'), seller_chats,
		pg_size_pretty(pg_database_size(current_database()))) FROM bench.meta")"
	echo "- pgbench: \`-n -M prepared -T (ramp + $duration) -c N -j min(N,2) --log\` over TCP to 127.0.0.1; TPS and latencies from the per-transaction logs of the last ${duration}s of each run (ramp-up not counted: $(for w in $workloads; do [ "$w" = none ] || printf '%s %ss, ' "$w" "$(ramp_of "$w")"; done | sed 's/, $//')); $runs runs per point, medians reported; warm-up ${warmup}s per variant before its first run"
	echo "- settings: $(psql_db -d "$db" -tAc "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
		WHERE name IN ('fsync', 'synchronous_commit', 'wal_level', 'shared_buffers', 'max_wal_size', 'checkpoint_timeout',
			'max_connections', 'work_mem', 'jit', 'wal_sync_method', 'full_page_writes', 'shared_preload_libraries', 'autovacuum')")"
} >"$out/meta.md"

# ---------------------------------------------------------------- workloads
read -r nbuyers nsellers every <<<"$(psql_db -d "$db" -tA -F' ' -c "SELECT nbuyers, nsellers, nchats / seller_chats FROM bench.meta")"
defs=(-D nchats=$nchats -D nbuyers=$nbuyers -D nsellers=$nsellers -D every=$every -D seller_chats=$seller_chats)

variants_of() {
	case $1 in
	send) echo "send_fn send_fn_direct send_sql send_sql_notify$([ "${BENCH_SEND_FULL:-0}" = 1 ] && echo " send_sql_full")" ;;
	history) echo "history_fn history_sql" ;;
	list_chats) echo "list_chats_fn list_chats_sql" ;;
	none) ;;
	*) echo "unknown workload $1" >&2; exit 2 ;;
	esac
}

pgbench_run() { # variant clients seconds [extra args]
	local v=$1 c=$2 t=$3
	shift 3
	local j=$(( c < 2 ? c : 2 ))
	local opts=""
	# the same calls with events sent by NOTIFY in the writing transaction
	case $v in *_direct) opts="-c chat.event_mode=direct" ;; esac
	PGOPTIONS="$opts" timeout -k 10 $(( t + 120 )) pgbench -h 127.0.0.1 -p "$port" -U postgres -n -M prepared \
		-c "$c" -j "$j" -T "$t" "${defs[@]}" -f "$here/scripts/$v.sql" "$@" "$db"
}

[ "$pgss" = 1 ] && psql_db -d "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
python3 "$here/report.py" header >"$out/results.csv"
total=0
for w in $workloads; do for v in $(variants_of "$w"); do for c in $clients; do total=$((total + runs)); done; done; done
n=0
for w in $workloads; do
	variants=$(variants_of "$w")
	ramp=$(ramp_of "$w")
	if [ "$warmup" -gt 0 ]; then
		for v in $variants; do
			log "warm-up: $v, 4 clients, ${warmup}s"
			pgbench_run "$v" 4 "$warmup" >"$out/raw/warmup_$v.txt" 2>&1 || { log "warm-up of $v failed:"; tail -5 "$out/raw/warmup_$v.txt" >&2; exit 1; }
		done
	fi
	for ((r = 1; r <= runs; r++)); do
		for c in $clients; do
			for v in $variants; do
				n=$((n + 1))
				name="${v}_c${c}_r${r}"
				# writes start from a clean checkpoint, so one run does not pay for another's
				[ "$w" = send ] && psql_db -d "$db" -c "CHECKPOINT"
				pgbench_run "$v" "$c" $((ramp + duration)) --log --log-prefix="$out/raw/$name" \
					>"$out/raw/$name.txt" 2>&1 || true
				python3 "$here/report.py" run "$out/raw/$name.txt" "$out/raw/$name" "$w" "$v" "$c" "$r" "$duration" \
					"$(cut -d' ' -f1 /proc/loadavg)" >>"$out/results.csv"
				[ "${BENCH_KEEP_LOGS:-0}" = 1 ] || rm -f "$out/raw/$name".[0-9]*
				log "[$n/$total] $(tail -1 "$out/results.csv" | awk -F, '{printf "%s c=%s run %s: %s tps, avg %s ms, p50 %s ms, p99 %s ms%s", $2, $3, $4, $5, $6, $7, $8, ($12 == "1" ? "" : "  FAILED (see raw/'"$name"'.txt)")}')"
			done
		done
	done
done

# deferred events: how many the publisher sent, and whether the ring overflowed
if [[ " $workloads " == *" send "* ]]; then
	echo "- events after the run (chat.publisher_status()): $(psql_db -d "$db" -tAc "SELECT chat.publisher_status()")" >>"$out/meta.md"
fi
if [ "$pgss" = 1 ]; then
	psql_db -d "$db" -P pager=off >"$out/pg_stat_statements.txt" <<'SQL'
SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 4) AS mean_ms,
	round(mean_plan_time::numeric, 4) AS plan_ms, rows, shared_blks_hit / greatest(calls, 1) AS hit_per_call,
	toplevel, left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 40;
SQL
fi

echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; results.csv has the 1-minute load after every run)" >>"$out/meta.md"
echo
python3 "$here/report.py" summary "$out"
