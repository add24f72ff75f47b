# Shared by run-ejabberd.sh and run-prosody.sh (sourced): the load run, with the optional
# count of the server's sync calls, and the archive counts added to the result.
#
# run_load LABEL TRACE: runs load.py against the server $PID ($DOMAIN, $PASSWORD, $PAIRS,
# $WINDOW, $DURATION, $WARMUP) into $OUT; with TRACE=1, strace counts the server's
# fsync-family calls per file meanwhile (it slows the server: for durability, not numbers).
run_load() {
    local label=$1 trace=$2 strace_pid=""
    if [ "$trace" = 1 ]; then
        command -v strace >/dev/null || die "strace not found"
        strace -f -y -qq -e trace=fsync,fdatasync,sync_file_range,syncfs,msync -o "$T/strace.txt" -p "$PID" &
        strace_pid=$!
        sleep 1 # strace has no signal for "attached"; the load only starts after this.
    fi
    python3 "$HERE/load.py" --host 127.0.0.1 --port 5222 --domain "$DOMAIN" --password "$PASSWORD" \
        --pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP" --server-pid "$PID" \
        --label "$label" --json "$OUT"
    if [ -n "$strace_pid" ]; then
        kill -INT "$strace_pid"; wait "$strace_pid" || true
        echo "sync calls by the server during the run (syscall, file, count):"
        sed -n 's/^[0-9]* *\([a-z_]*\)([0-9]*<\([^>]*\)>.*/\1 \2/p' "$T/strace.txt" | sort | uniq -c | sort -rn | head
    fi
}

# sent_total: the messages load.py sent (all of them answered before it returned).
sent_total() {
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sent_total'])" "$OUT"
}

# add_to_result KEY VALUE [KEY VALUE ...]: integer fields added to $OUT, then $OUT copied to
# $JSON when one was asked for.
add_to_result() {
    python3 - "$OUT" "$@" <<'PY'
import json, sys
path, pairs = sys.argv[1], sys.argv[2:]
result = json.load(open(path))
for key, value in zip(pairs[::2], pairs[1::2]):
    result[key] = int(value)
json.dump(result, open(path, "w"), indent=2)
PY
    if [ -n "$JSON" ]; then cp "$OUT" "$JSON"; fi
}
