#!/usr/bin/env bash
# pg_dump keeps the chat data: dump a database with chats and messages,
# restore it into an empty one, and read the messages back through the API.
# Uses the PG* environment of test/run-tests.sh.
set -euo pipefail
export PGOPTIONS='-c client_min_messages=warning'
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
q() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
# WITH (FORCE): the event publisher of a database keeps a connection to it
q -d postgres -c "DROP DATABASE IF EXISTS dump_src WITH (FORCE)" -c "DROP DATABASE IF EXISTS dump_dst WITH (FORCE)" \
	-c "CREATE DATABASE dump_src" -c "CREATE DATABASE dump_dst"
q -d dump_src -c "CREATE EXTENSION chat" \
	-c "SELECT chat.send_message(1, chat.open_chat(1, 'direct', NULL, 2), 'kept by pg_dump')" >/dev/null
q -d dump_src -c "SELECT chat.send_message(2, 1, 'and this one too')" >/dev/null
as_pg pg_dump -h "$PGHOST" -p "$PGPORT" -U postgres dump_src | q -d dump_dst >/dev/null 2>&1
got=$(q -d dump_dst -c "SELECT string_agg(m ->> 'body', '|') FROM chat.history(1, 1) m")
q -d postgres -c "DROP DATABASE dump_src WITH (FORCE)" -c "DROP DATABASE dump_dst WITH (FORCE)"
if [ "$got" != "and this one too|kept by pg_dump" ]; then
	echo "dump/restore lost data: history after restore is '$got'" >&2
	exit 1
fi
echo "dump and restore: ok"
