#!/bin/bash
# Run the XMPP throughput load (load.py) against a private ejabberd instance.
#
#   sudo bench/xmpp/run-ejabberd.sh [--pairs P] [--window W] [--duration D] [--warmup S] [--json FILE] [--keep]
#
# Starts ejabberd (Debian package) with bench/xmpp/ejabberd.yml in a fresh temporary
# directory (own spool, logs and SQLite file; the Debian service and /var/lib/ejabberd
# are not used), registers 2*P accounts, runs load.py, checks that the messages reached
# the mod_mam archive in SQLite, stops the server and removes the directory.
#
# Environment: BENCH_TMP (parent of the temporary directory, default /var/tmp; keep it
# on a real disk, not tmpfs, or fsync costs nothing), EJ_DIST_PORT (Erlang distribution
# port of the private node, default 5289, bound to 127.0.0.1), EJ_STRACE=1 (attach strace to
# the server during the load and count its fsync/fdatasync calls per file; this slows the
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

die() { echo "run-ejabberd: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (ejabberdctl switches to the ejabberd user)"
for c in ejabberdctl erl sqlite3 python3 ss; do command -v $c >/dev/null || die "$c not found"; done
SCHEMA=/usr/share/ejabberd/sql/lite.sql
[ -f $SCHEMA ] || die "$SCHEMA missing (apt-get install ejabberd)"
ls -d /usr/lib/erlang/lib/p1_sqlite3-* >/dev/null 2>&1 || die "the SQLite driver is missing: apt-get install erlang-p1-sqlite3"

DOMAIN=bench.local
NODE=ejbench@localhost
COOKIE=ejbench
DIST_PORT=${EJ_DIST_PORT:-5289}
PASSWORD=benchpw

port_busy() { ss -Hltn "sport = :$1" | grep -q .; }

# The Debian package enables and (on a systemd host) starts its own service on 5222.
if port_busy 5222; then
    if pgrep -u ejabberd -f 'ejabberd@' >/dev/null; then
        echo "stopping and disabling the Debian ejabberd service (it holds port 5222)"
        service ejabberd stop >/dev/null 2>&1 || ejabberdctl stop >/dev/null 2>&1 || true
        for _ in $(seq 30); do port_busy 5222 || break; sleep 1; done
    fi
    port_busy 5222 && die "port 5222 is in use: $(ss -Hltnp 'sport = :5222')"
fi
systemctl disable ejabberd >/dev/null 2>&1 || update-rc.d ejabberd disable >/dev/null 2>&1 || true
port_busy "$DIST_PORT" && die "distribution port $DIST_PORT is in use (set EJ_DIST_PORT)"

T=$(mktemp -d "${BENCH_TMP:-/var/tmp}/ejabberd-bench.XXXXXX")
mkdir -p "$T/spool" "$T/log"
cp "$HERE/ejabberd.yml" "$T/ejabberd.yml"
# The schema is created up front: ejabberd 23.01 does not create SQL tables itself.
sqlite3 "$T/spool/ejabberd.db" < $SCHEMA
cat > "$T/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$NODE
ERL_DIST_PORT=$DIST_PORT
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -setcookie $COOKIE"
EJABBERD_PID_PATH=$T/ejabberd.pid
EOF
chown -R ejabberd:ejabberd "$T"
chmod 755 "$T"
CTL=(ejabberdctl --config "$T/ejabberd.yml" --ctl-config "$T/ejabberdctl.cfg" --spool "$T/spool" --logs "$T/log")
DB="$T/spool/ejabberd.db"
echo "temp dir: $T ($(stat -f -c %T "$T"))"

PID=""
cleanup() {
    set +e
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        "${CTL[@]}" stop >/dev/null 2>&1
        for _ in $(seq 30); do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$PID" 2>/dev/null && kill "$PID"
    fi
    if [ "$KEEP" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# erl_rpc EXPR: evaluate EXPR (which may use N = the ejabberd node) in a short-lived hidden node.
erl_rpc() {
    (cd "$T" && erl -sname "ejbctl$$" -setcookie $COOKIE -hidden -noshell -dist_listen false \
        -erl_epmd_port "$DIST_PORT" -start_epmd false \
        -eval "N = '$NODE', $1, halt()." )
}

"${CTL[@]}" start
"${CTL[@]}" started || { tail -n 30 "$T/log/"*.log; die "ejabberd did not start"; }
PID=$(cat "$T/ejabberd.pid")
[ "$(cat /proc/$PID/comm)" = beam.smp ] || die "pid $PID is not beam.smp"
for _ in $(seq 50); do port_busy 5222 && break; sleep 0.2; done
port_busy 5222 || die "ejabberd is not listening on 5222"
echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd) started, beam.smp pid $PID"

# Accounts u0 .. u(2P-1). The first goes through `ejabberdctl register`; the rest call the
# same function that command runs (ejabberd_admin:register/3) from one Erlang node, since
# every ejabberdctl call boots a VM (~0.5 s each).
N_ACC=$((2 * PAIRS))
"${CTL[@]}" register u0 $DOMAIN $PASSWORD >/dev/null
if [ $N_ACC -gt 1 ]; then
    erl_rpc "Bad = [{I, R} || I <- lists:seq(1, $((N_ACC - 1))),
        R <- [rpc:call(N, ejabberd_admin, register,
                       [list_to_binary(\"u\" ++ integer_to_list(I)), <<\"$DOMAIN\">>, <<\"$PASSWORD\">>])],
        element(1, R) =/= ok],
      Bad =:= [] orelse io:format(\"register failed: ~p~n\", [Bad])"
fi
USERS=$(sqlite3 "$DB" "select count(*) from users")
[ "$USERS" = "$N_ACC" ] || die "registered $USERS accounts, expected $N_ACC"
echo "registered $USERS accounts"

# What the server's own SQLite connection runs with (asked through that connection).
erl_rpc "Db = 'ejabberd_sqlite_$DOMAIN',
    V = fun(Q) -> R = rpc:call(N, sqlite3, sql_exec, [Db, Q]), {rows, [{X}]} = lists:keyfind(rows, 1, R), X end,
    io:format(\"ejabberd's own SQLite connection: synchronous=~p (2 = FULL) journal_mode=~s~n\",
              [V(\"pragma synchronous\"), V(\"pragma journal_mode\")])" \
    || echo "could not query ejabberd's SQLite pragmas"

OUT="$T/result.json"
run_load "ejabberd $(dpkg-query -W -f '${Version}' ejabberd) mod_mam/sqlite" "${EJ_STRACE:-0}"

# Every one-to-one chat message is archived twice: in the sender's and in the recipient's
# archive (mod_mam keeps one archive per user). Receipts carry no body and are not archived.
SENT=$(sent_total)
# Both copies of a message are stored before its receipt can go back (README: durability), and
# load.py returned only once every receipt had come: the count needs no wait.
ROWS=$(sqlite3 "$DB" "select count(*) from archive")
MSGS=$(sqlite3 "$DB" "select count(*) from archive where kind='chat' and txt is not null")
echo "archive (SQLite $DB): $ROWS rows ($MSGS chat rows) for $SENT messages sent" \
     "-> $(python3 -c "print(round($ROWS / max(1, $SENT), 3))") rows/message (expected 2: sender's + recipient's copy)"
add_to_result archive_rows "$ROWS"
