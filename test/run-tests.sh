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
echo "== pgTAP suites"
pg_prove --failures "$here"/pgtap/*.sql
echo "== README tour"
"$here/readme_tour.sh" >/dev/null
echo "README tour: ok"
echo "== partition maintenance (pytest)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/maintenance"
