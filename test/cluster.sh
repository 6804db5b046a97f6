#!/usr/bin/env bash
# Manages a private PostgreSQL 15 cluster for `make run`, `make test` and
# `make bench`. initdb and postgres refuse root, so they run as the postgres
# OS user; the socket lives in the data directory and the server listens on
# 127.0.0.1 only.
#   cluster.sh start DIR PORT         initdb if needed, start if stopped
#   cluster.sh stop DIR               stop (fast)
#   cluster.sh crash DIR              stop at once, as a crash would (no checkpoint: the next start replays WAL)
#   cluster.sh createdb DIR PORT DB   create DB with the extension if missing
#   cluster.sh seed DIR PORT DB       load demo data once
#   cluster.sh hello DIR PORT DB      print how to connect
# CHAT_PRELOAD=0 makes a cluster without shared_preload_libraries = 'chat'.
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2 port=${3:-} db=${4:-}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_db() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"; }

case $cmd in
start)
	if [ ! -f "$dir/PG_VERSION" ]; then
		mkdir -p "$dir"
		[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
		chmod 700 "$dir"
		if ! as_pg test -w "$dir"; then
			echo "the postgres OS user cannot reach $dir: put the project where every user can traverse its path" >&2
			exit 1
		fi
		as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
		cat >>"$dir/postgresql.conf" <<CONF
# chat: private cluster
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = '$( [ "${CHAT_PRELOAD:-1}" = 1 ] && echo chat )'
max_connections = 200
shared_buffers = 512MB
logging_collector = off
log_line_prefix = '%m [%p] '
CONF
	fi
	if ! as_pg "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
	fi
	;;
stop)
	if [ -f "$dir/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		as_pg "$PGBIN/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null ||
			as_pg "$PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null
	fi
	;;
crash)
	as_pg "$PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null
	;;
createdb)
	if ! psql_db -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
		psql_db -d postgres -c "CREATE DATABASE \"$db\""
	fi
	psql_db -d "$db" -c "CREATE EXTENSION IF NOT EXISTS chat"
	# a database made by a checkout from before the C symbols were prefixed
	# (0.1.0 is unreleased: no upgrade script): made again, its demo data
	# seeded again
	if [ "$(psql_db -d "$db" -tAc "SELECT count(*) FROM pg_proc WHERE pronamespace = 'chat'::regnamespace
			AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') AND prosrc NOT LIKE 'chat\_%'")" != 0 ]; then
		echo "the chat extension in $db was made by an older build: recreating it (its data is dropped)" >&2
		psql_db -d "$db" -c "DROP EXTENSION chat CASCADE" -c "CREATE EXTENSION chat"
	fi
	# ... or by a build from before sealed events (no chat.event_keys),
	# presence among contacts (no chat.contacts), webhooks (no chat.webhooks)
	# email digests (no chat.members.pending_since), push (no chat.push_state)
	# or frozen-relay sweeps (no chat.relays.listen_pid)
	if [ "$(psql_db -d "$db" -tAc "SELECT to_regclass('chat.event_keys') IS NULL OR to_regclass('chat.contacts') IS NULL
			OR to_regclass('chat.webhooks') IS NULL OR to_regclass('chat.push_state') IS NULL
			OR NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'chat.members'::regclass AND attname = 'pending_since' AND NOT attisdropped)
			OR NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'chat.relays'::regclass AND attname = 'listen_pid' AND NOT attisdropped)")" = t ]; then
		echo "the chat extension in $db predates sealed events, contacts, webhooks, email digests, push or frozen-relay sweeps: recreating it (its data is dropped)" >&2
		psql_db -d "$db" -c "DROP EXTENSION chat CASCADE" -c "CREATE EXTENSION chat"
	fi
	# only the chat roles (and superusers) may connect (docs/security.md)
	psql_db -d "$db" -c "REVOKE CONNECT, TEMPORARY ON DATABASE \"$db\" FROM PUBLIC" \
		-c "GRANT CONNECT ON DATABASE \"$db\" TO chat_app, chat_relay, chat_event_reader, chat_notify"
	;;
seed)
	if [ "$(psql_db -d "$db" -tAc 'SELECT count(*) FROM chat.chats')" = 0 ]; then
		psql_db -d "$db" -f "$here/demo_seed.sql" >/dev/null
	fi
	;;
hello)
	cat <<MSG

chat is running: PostgreSQL 15 with the chat extension, data in $dir
  connect:  psql -h $dir -p $port -U postgres $db
  try:      SELECT * FROM chat.list_chats(1);
  stop:     make stop
MSG
	;;
*)
	echo "usage: $0 start|stop|crash|createdb|seed|hello DIR [PORT] [DB]" >&2
	exit 2
	;;
esac
