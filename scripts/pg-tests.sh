#!/usr/bin/env bash
# pg_regress (--temp-instance) and TAP tests against the installed extension.
# As root, runs them as the unprivileged user s5vtest on a copy of the tree (PostgreSQL refuses to run as root).
# Arguments: optional TAP test files to run instead of all of test/tap/*.pl ("--no-tap" skips TAP, "--no-regress").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$($PG_CONFIG --bindir)
PGXS_DIR=$(cd "$(dirname "$($PG_CONFIG --pgxs)")/../.." && pwd)
PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress"

run_regress=1
run_tap=1
tap_tests=()
for a in "$@"; do
	case "$a" in
	--no-tap) run_tap=0 ;;
	--no-regress) run_regress=0 ;;
	*) tap_tests+=("$a") ;;
	esac
done

if [ "$(id -u)" -eq 0 ]; then
	id s5vtest >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash s5vtest
	# A directory of its own per run (S5V_PGTEST_DIR to choose it), so runs side by side do not collide.
	WORK=${S5V_PGTEST_DIR:-$(mktemp -d /tmp/s5vector-pgtests.XXXXXX)}
	rm -rf "$WORK"
	mkdir -p "$WORK"
	echo "tests run in $WORK"
	rsync -a --exclude .git --exclude build --exclude '*.o' --exclude '*.so' "$ROOT"/ "$WORK"/
	chown -R s5vtest "$WORK"
	exec runuser -u s5vtest -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" bash "$WORK/scripts/pg-tests.sh" "$@"
fi

cd "$ROOT"
status=0
regress_tests=$(ls sql/*.sql 2>/dev/null | sed -e 's|sql/||' -e 's|\.sql$||' | tr '\n' ' ')

if [ "$run_regress" -eq 1 ] && [ -n "$regress_tests" ]; then
	echo "=== pg_regress ==="
	rm -rf results tmp_check regression.diffs regression.out
	if ! "$PG_REGRESS" --temp-instance=./tmp_check --temp-config=test/regress.conf --bindir="$BINDIR" \
		--inputdir=. --outputdir=. --load-extension=s5vector $regress_tests; then
		[ -f regression.diffs ] && head -c 20000 regression.diffs
		status=1
	fi
fi

if [ "$run_tap" -eq 1 ]; then
	if [ ${#tap_tests[@]} -eq 0 ]; then
		mapfile -t tap_tests < <(ls test/tap/*.pl 2>/dev/null)
	fi
	if [ ${#tap_tests[@]} -gt 0 ]; then
		echo "=== TAP ==="
		rm -rf tmp_check
		mkdir -p tmp_check
		if ! TESTDIR="$ROOT" PATH="$BINDIR:$PATH" PG_REGRESS="$PG_REGRESS" PGPORT=65432 \
			prove -I "$PGXS_DIR/src/test/perl" -I "$ROOT/test/tap" --timer "${tap_tests[@]}"; then
			status=1
			for f in tmp_check/log/*; do
				[ -f "$f" ] && { echo "--- $f (tail)"; tail -n 40 "$f"; }
			done
		fi
	fi
fi
exit $status
