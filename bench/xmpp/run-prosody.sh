#!/bin/bash
# Run the XMPP throughput load (load.py) against a private Prosody instance.
#
#   sudo bench/xmpp/run-prosody.sh [--pairs P] [--window W] [--duration D] [--warmup S] [--json FILE] [--keep]
#
# Starts Prosody (Debian package) with bench/xmpp/prosody.cfg.lua in a fresh temporary
# directory (own data dir, SQLite file, pid file, log; the Debian service and
# /var/lib/prosody are not used), registers 2*P accounts, runs load.py, checks that the
# messages reached the mod_mam archive in SQLite, stops the server and removes the directory.
#
# Environment: BENCH_TMP (parent of the temporary directory, default /var/tmp; keep it
# on a real disk, not tmpfs, or fsync costs nothing), PROSODY_STRACE=1 (attach strace
# during the load and count the server's fsync/fdatasync calls per file; this slows the
# server down, so use it to check durability, not for the numbers).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"
PAIRS=10
WINDOW=1
DURATION=10
WARMUP=0
JSON=""
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --pairs) PAIRS=$2; shift 2;;
        --window) WINDOW=$2; shift 2;;
        --duration) DURATION=$2; shift 2;;
        --warmup) WARMUP=$2; shift 2;;
        --json) JSON=$2; shift 2;;
        --keep) KEEP=1; shift;;
        -h|--help) sed -n '2,15p' "$0"; exit 0;;
        *) echo "unknown option: $1" >&2; exit 2;;
    esac
done

die() { echo "run-prosody: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (Prosody is run as the prosody user)"
for c in prosody prosodyctl runuser sqlite3 python3 ss; do command -v $c >/dev/null || die "$c not found"; done
ls /usr/lib/x86_64-linux-gnu/lua/*/dbd/sqlite3.so >/dev/null 2>&1 \
    || die "the SQLite driver for LuaDBI is missing: apt-get install lua-dbi-sqlite3"

DOMAIN=bench.local
PASSWORD=benchpw

port_busy() { ss -Hltn "sport = :$1" | grep -q .; }

# The Debian package enables and (on a systemd host) starts its own service on 5222.
if port_busy 5222; then
    if pgrep -u prosody -f '/usr/bin/prosody' >/dev/null && ! pgrep -u prosody -f 'prosody-bench\.' >/dev/null; then
        echo "stopping and disabling the Debian prosody service (it holds port 5222)"
        service prosody stop >/dev/null 2>&1 || true
        for _ in $(seq 30); do port_busy 5222 || break; sleep 1; done
    fi
    port_busy 5222 && die "port 5222 is in use: $(ss -Hltnp 'sport = :5222')"
fi
systemctl disable prosody >/dev/null 2>&1 || update-rc.d prosody disable >/dev/null 2>&1 || true

T=$(mktemp -d "${BENCH_TMP:-/var/tmp}/prosody-bench.XXXXXX")
mkdir -p "$T/data" "$T/certs"
sed "s#@BENCH_DIR@#$T#g" "$HERE/prosody.cfg.lua" > "$T/prosody.cfg.lua"
chown -R prosody:prosody "$T"
chmod 755 "$T"
CFG="$T/prosody.cfg.lua"
DB="$T/data/prosody.sqlite"
echo "temp dir: $T ($(stat -f -c %T "$T"))"
cd "$T"

PID=""
cleanup() {
    set +e
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID"
        for _ in $(seq 30); do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$PID" 2>/dev/null && kill -KILL "$PID"
    fi
    cd /
    if [ "$KEEP" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# Accounts u0 .. u(2P-1), registered with prosodyctl before the server starts (prosodyctl
# writes straight into the SQLite store; ~0.05 s per call).
N_ACC=$((2 * PAIRS))
for i in $(seq 0 $((N_ACC - 1))); do
    runuser -u prosody -- prosodyctl --config "$CFG" register "u$i" $DOMAIN $PASSWORD 2>>"$T/prosodyctl.err" \
        || { cat "$T/prosodyctl.err"; die "could not register u$i"; }
done
USERS=$(sqlite3 "$DB" "select count(*) from prosody where store='accounts'")
[ "$USERS" = "$N_ACC" ] || die "registered $USERS accounts, expected $N_ACC"
echo "registered $USERS accounts"

runuser -u prosody -- prosody -F --config "$CFG" > "$T/stdout.txt" 2>&1 &
for _ in $(seq 50); do
    [ -s "$T/prosody.pid" ] && port_busy 5222 && break
    sleep 0.2
done
port_busy 5222 || { cat "$T/stdout.txt" "$T/prosody.log" 2>/dev/null; die "prosody is not listening on 5222"; }
PID=$(cat "$T/prosody.pid")
case "$(cat /proc/$PID/comm)" in lua*|prosody) ;; *) die "pid $PID is not prosody";; esac
echo "prosody $(dpkg-query -W -f '${Version}' prosody) started, pid $PID"

OUT="$T/result.json"
run_load "prosody $(dpkg-query -W -f '${Version}' prosody) mod_mam/sqlite" "${PROSODY_STRACE:-0}"

# Prosody archives each message twice (sender's and recipient's archive) and, because they
# carry urn:xmpp:receipts, each receipt twice as well: 4 rows per completed exchange.
SENT=$(sent_total)
# Both copies of a message are stored before its receipt can go back (README: durability), and
# load.py returned only once every receipt had come: the count needs no wait.
ROWS=$(sqlite3 "$DB" "select count(*) from prosodyarchive")
BODY=$(sqlite3 "$DB" "select count(*) from prosodyarchive where value like '%<body>%'")
echo "archive (SQLite $DB): $ROWS rows ($BODY with a body) for $SENT messages sent" \
     "-> $(python3 -c "print(round($BODY / max(1, $SENT), 3))") body rows/message (expected 2: sender's + recipient's copy;" \
     "the other rows are the receipts, which Prosody archives too)"
add_to_result archive_rows "$ROWS" archive_rows_with_body "$BODY"
