#!/usr/bin/env bash
# Runs the "five-minute SQL tour" of README.md: extracts its ```sql block and
# runs it with psql against the database named by the standard PG*
# environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE). Exits non-zero
# when the block is missing or any statement fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
readme=${README:-$here/../README.md}

tour=$(awk '
	/^## A five-minute SQL tour/ { in_section = 1; next }
	in_section && /^## /        { exit }
	in_section && /^```sql$/    { in_block = 1; next }
	in_block && /^```$/         { exit }
	in_block                    { print }
' "$readme")

if [ -z "$tour" ]; then
	echo "readme_tour.sh: no \`\`\`sql block under \"## A five-minute SQL tour\" in $readme" >&2
	exit 1
fi

# ON_ERROR_STOP makes psql exit with status 3 on the first failing statement.
printf '%s\n' "$tour" | psql -X -v ON_ERROR_STOP=1 -f -
echo "readme_tour.sh: the README tour ran without error"
