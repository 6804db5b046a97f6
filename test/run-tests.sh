#!/usr/bin/env bash
# `make test`: a throwaway cluster on a private port, the extension created in
# a fresh database, then every test suite. Exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${TEST_PORT:-54329}
dir=$(mktemp -d /tmp/chat-test.XXXXXX)
chmod 755 "$dir"
export PGDATA_DIR="$dir/data"

cleanup() {
	status=$?
	if [ $status -ne 0 ] && [ -f "$PGDATA_DIR/server.log" ]; then
		echo "--- last lines of the server log ---"
		tail -n 40 "$PGDATA_DIR/server.log"
	fi
	"$here/cluster.sh" stop "$PGDATA_DIR" || true
	rm -rf "$dir"
	exit $status
}
trap cleanup EXIT

"$here/cluster.sh" start "$PGDATA_DIR" "$port"
"$here/cluster.sh" createdb "$PGDATA_DIR" "$port" chat_test
runuser -u postgres -- psql -X -q -h "$PGDATA_DIR" -p "$port" -U postgres -d chat_test \
	-c "CREATE EXTENSION IF NOT EXISTS pgtap; CREATE EXTENSION IF NOT EXISTS dblink;"

export PGHOST="$PGDATA_DIR" PGPORT="$port" PGUSER=postgres PGDATABASE=chat_test
export PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
echo "== chat-client.js (node --test)"
node --test "$here"/client/*.test.mjs
echo "== pgTAP suites"
if compgen -G "$here/pgtap/*.sql" >/dev/null; then
	pg_prove --failures "$here"/pgtap/*.sql
else
	echo "no pgTAP suite yet"
fi
echo "== README tour"
"$here/readme_tour.sh" >/dev/null
echo "README tour: ok"
echo "== pg_dump and restore"
"$here/dump_restore.sh"
echo "== event publication (pytest)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/events"
echo "== chat-relay (pytest, $( [ -x "$here/../relay/chat-relay-asan" ] && echo "ASan/UBSan build" || echo "plain build"))"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/relay"
echo "== partition maintenance (pytest)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/maintenance"
echo "== browser: the demo in chromium (playwright-core, $( [ -x "$here/../relay/chat-relay-asan" ] && echo "ASan/UBSan relays" || echo "plain relays"))"
if [ ! -f "$here/browser/node_modules/playwright-core/package.json" ]; then
	(cd "$here/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
node "$here/browser/run.mjs"
echo "browser screenshots: $here/browser/artifacts/"
echo "== attachments (botocore comparison, end to end against radosgw)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/attachments"
