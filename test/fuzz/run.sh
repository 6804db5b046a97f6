#!/usr/bin/env bash
# The libFuzzer harnesses of test/fuzz (ASan + UBSan), one after the other.
#   run.sh SECONDS [NAME...]   build, then run each (request auth envelope seal by
#                              default) for SECONDS; exits non-zero when any
#                              found a crash, a leak, a timeout or a sanitizer
#                              report (the input is saved as relay/build/fuzz/NAME-crash-…)
# FUZZ_CORPUS=fresh (what make test uses): start from the seeds only, in a
# scratch folder; otherwise relay/build/fuzz/NAME_corpus keeps what earlier
# runs found and grows. Reproduce a crash: relay/build/fuzz/NAME_fuzz FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../.." && pwd)/relay/build/fuzz
secs=${1:?usage: run.sh SECONDS [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(request auth envelope seal)
command -v "${CLANG:-clang}" >/dev/null || { echo "run.sh: clang is missing: make deps-test (as root)" >&2; exit 1; }
make -s -C "$here"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
scratch=$(mktemp -d /tmp/chat-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
status=0
for n in "${names[@]}"; do
	[ -d "$here/${n}_corpus" ] || { echo "run.sh: no harness '$n'" >&2; exit 2; }
	if [ "${FUZZ_CORPUS:-}" = fresh ]; then work=$scratch/$n; else work=$out/${n}_corpus; fi
	mkdir -p "$work"
	log=$scratch/$n.log
	# -timeout: one input over 10 s is a hang; -rss_limit_mb: 2 GB is a leak or a bomb
	if "$out/${n}_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/$n-" "$work" "$here/${n}_corpus" >"$log" 2>&1 &&
		! grep -q -E 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' "$log"; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -n 1 | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/')
		echo "fuzz $n: ok, ${secs} s, $runs runs, $cov"
	else
		status=1
		echo "fuzz $n: FAILED (log below; the input: $out/$n-*)"
		grep -v -E '^#[0-9]+' "$log" | tail -n 60
	fi
done
exit $status
