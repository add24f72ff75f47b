#!/usr/bin/env python3
"""XMPP load generator shaped like `surechat bench --scenario throughput`.

P pairs; each pair is two accounts (a "client" and an "operator") logged in over
plain TCP (no TLS, SASL PLAIN, resource bind, session, initial presence).  Both
sides send chat messages to each other; each side keeps W messages in flight.
Every message asks for a XEP-0184 receipt; the receiving side answers each one
with <received/>, and a message completes when its receipt is back at the
sender.  Latency = send -> receipt back at the sender.  Throughput = completed
messages / duration.  The connect/login phase is not counted: the clock starts
once every connection is bound and has sent its presence.

Standard library only.  The stream is not parsed as XML: the receive path looks
for `</message>` ends and picks the id out of each stanza with bytes.find, which
is enough for the stanzas a server sends back for this traffic and keeps the
generator's own CPU low (it is measured and reported, so one can tell whether
the generator or the server was the limit).

Accounts are <prefix><n>@<domain> with one password; pair i uses accounts 2i
(client) and 2i+1 (operator).  They must exist already (run-ejabberd.sh and
run-prosody.sh register them).
"""

import argparse
import asyncio
import base64
import json
import math
import os
import sys
import time

NS_STREAM = (
    "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class LoginError(Exception):
    pass


class Stats:
    def __init__(self):
        self.measuring = False
        self.t_begin = 0.0  # completions before this (warmup) are not counted
        self.t_end = math.inf
        self.completed = 0  # receipts back within the window
        self.completed_after = 0  # receipts for window messages that came back after it
        self.sent = 0  # messages sent (all of them, window or not)
        self.lat = []  # seconds, only for completions within the window
        self.inflight = 0
        self.drained = None  # future set when inflight reaches 0 after the window


class Conn(asyncio.Protocol):
    """One logged-in device.  Login uses expect(); afterwards data_received is the fast path."""

    def __init__(self, stats, window, body):
        self.stats = stats
        self.window = window
        self.body = body
        self.buf = b""
        self.transport = None
        self.fast = False
        self.waiter = None  # (pattern, future) during login
        self.closed = asyncio.get_running_loop().create_future()
        self.pending = {}  # message id -> send time
        self.seq = 0
        self.msg_prefix = b""
        self.receipt_prefix = b""
        self.jid = ""

    # --- asyncio.Protocol ---
    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)
        if self.waiter and not self.waiter[1].done():
            self.waiter[1].set_exception(LoginError("connection closed during login: %r" % (self.buf[-300:],)))

    def data_received(self, data):
        if self.fast:
            self._fast(data)
            return
        self.buf += data
        if self.waiter:
            pats, fut = self.waiter
            for p in pats:
                i = self.buf.find(p)
                if i >= 0:
                    self.waiter = None
                    if not fut.done():
                        fut.set_result((p, i))
                    break

    # --- login helpers ---
    async def expect(self, *pats, timeout=30.0):
        for p in pats:
            i = self.buf.find(p)
            if i >= 0:
                return p, i
        fut = asyncio.get_running_loop().create_future()
        self.waiter = (pats, fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise LoginError("timeout waiting for %r; have %r" % (pats, self.buf[-300:]))

    def consume(self, upto):
        self.buf = self.buf[upto:]

    async def login(self, domain, user, password, resource):
        w = self.transport.write
        w(NS_STREAM.format(domain=domain).encode())
        p, i = await self.expect(b"</stream:features>")
        feats = self.buf[: i]
        self.consume(i + len(p))
        if b">PLAIN<" not in feats:
            raise LoginError("server does not offer SASL PLAIN without TLS: %r" % feats[-400:])
        cred = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        w(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % cred).encode())
        p, i = await self.expect(b"<success", b"<failure")
        if p == b"<failure":
            await asyncio.sleep(0.05)
            raise LoginError("SASL failure for %s: %r" % (user, self.buf[i:i + 300]))
        self.consume(i + len(p))
        w(NS_STREAM.format(domain=domain).encode())
        p, i = await self.expect(b"</stream:features>")
        self.consume(i + len(p))
        w(
            (
                "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<resource>%s</resource></bind></iq>" % resource
            ).encode()
        )
        p, i = await self.expect(b"</jid>", b"<error")
        if p == b"<error":
            raise LoginError("bind failed: %r" % self.buf[-300:])
        j = self.buf.rfind(b">", 0, i)
        self.jid = self.buf[j + 1: i].decode()
        self.consume(i + len(p))
        p, i = await self.expect(b"</iq>")
        self.consume(i + len(p))
        # RFC 3921 session: optional on both servers, still sent as an old client would.
        w(b"<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        p, i = await self.expect(b"'sess1'", b'"sess1"')
        p2, i2 = await self.expect(b">")  # end of that iq's start tag (or whole iq)
        self.consume(i2 + 1)
        w(b"<presence/>")

    def setup(self, peer_bare, peer_full):
        self.msg_prefix = ("<message type='chat' to='%s' id='" % peer_bare).encode()
        self.msg_suffix = ("'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>" % self.body).encode()
        self.receipt_prefix = ("<message to='%s'><received xmlns='urn:xmpp:receipts' id='" % peer_full).encode()

    # --- measured phase ---
    def start(self, now):
        self.buf = b""  # presence echoes etc. from login
        self.fast = True
        out = []
        for _ in range(self.window):
            out.append(self._new_message(now))
        self.transport.write(b"".join(out))

    def _new_message(self, now):
        self.seq += 1
        mid = b"m%d" % self.seq
        self.pending[mid] = now
        self.stats.sent += 1
        self.stats.inflight += 1
        return self.msg_prefix + mid + self.msg_suffix

    def _fast(self, data):
        buf = self.buf + data if self.buf else data
        start = 0
        out = []
        now = None
        st = self.stats
        while True:
            end = buf.find(b"</message>", start)
            if end < 0:
                break
            s = buf.rfind(b"<message", start, end)
            if s >= 0:
                r = buf.find(b"<received", s, end)
                if r >= 0:
                    i = buf.find(b"id=", r, end) + 3
                    q = buf[i: i + 1]
                    j = buf.find(q, i + 1)
                    t = self.pending.pop(buf[i + 1: j], None)
                    if t is not None:
                        if now is None:
                            now = time.perf_counter()
                        st.inflight -= 1
                        if now <= st.t_end:
                            if now >= st.t_begin:
                                st.completed += 1
                                st.lat.append(now - t)
                            out.append(self._new_message(now))
                        else:
                            st.completed_after += 1
                            if st.inflight == 0 and st.drained is not None and not st.drained.done():
                                st.drained.set_result(None)
                elif buf.find(b"<request", s, end) >= 0:
                    gt = buf.find(b">", s, end)
                    i = buf.find(b" id=", s, gt)
                    if i >= 0:
                        i += 4
                        q = buf[i: i + 1]
                        j = buf.find(q, i + 1)
                        out.append(self.receipt_prefix + buf[i + 1: j] + b"'/></message>")
            start = end + 10
        self.buf = buf[start:] if start < len(buf) else b""
        if out:
            self.transport.write(b"".join(out))


def proc_cpu(pid):
    """utime+stime of a process in seconds, from /proc/<pid>/stat."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return None


def proc_mem(pid):
    """(VmRSS, VmHWM) in bytes from /proc/<pid>/status."""
    out = {}
    if not pid:
        return out
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def own_cpu():
    t = os.times()
    return t.user + t.system


def pct(sorted_lat, q):
    if not sorted_lat:
        return None
    k = max(0, min(len(sorted_lat) - 1, math.ceil(q * len(sorted_lat)) - 1))
    return round(sorted_lat[k] * 1000, 3)


async def open_conn(args, stats, idx):
    loop = asyncio.get_running_loop()
    user = "%s%d" % (args.prefix, idx)
    _, c = await loop.create_connection(
        lambda: Conn(stats, args.window, args.body), args.host, args.port
    )
    await c.login(args.domain, user, args.password, "bench")
    return c


async def main(args):
    stats = Stats()
    loop = asyncio.get_running_loop()
    n = 2 * args.pairs
    sem = asyncio.Semaphore(args.connect_concurrency)

    async def one(i):
        async with sem:
            return await open_conn(args, stats, i)

    t_c = time.perf_counter()
    conns = await asyncio.gather(*(one(i) for i in range(n)))
    connect_s = time.perf_counter() - t_c
    for p in range(args.pairs):
        a, b = conns[2 * p], conns[2 * p + 1]
        a.setup(b.jid.split("/")[0], b.jid)
        b.setup(a.jid.split("/")[0], a.jid)
    # let presence echoes and anything else from login arrive before the clock starts
    await asyncio.sleep(0.5)

    pid = args.server_pid
    t0 = time.perf_counter()
    stats.t_begin = t0 + args.warmup
    stats.t_end = stats.t_begin + args.duration
    begin_sample = {}
    end_sample = {}

    def at_begin():
        begin_sample["gen"] = own_cpu()
        begin_sample["srv"] = proc_cpu(pid)

    if args.warmup > 0:
        loop.call_at(loop.time() + args.warmup, at_begin)
    else:
        at_begin()
    for c in conns:
        c.start(t0)

    def at_end():
        end_sample["gen"] = own_cpu()
        end_sample["srv"] = proc_cpu(pid)
        end_sample["mem"] = proc_mem(pid)
        end_sample["t"] = time.perf_counter()

    loop.call_at(loop.time() + args.warmup + args.duration, at_end)
    await asyncio.sleep(args.warmup + args.duration + 0.001)
    while "t" not in end_sample:
        await asyncio.sleep(0.01)

    # Drain: wait for the receipts of messages still in flight (not counted), so that
    # every message sent has been delivered and archived before the server is checked.
    if stats.inflight > 0:
        stats.drained = loop.create_future()
        try:
            await asyncio.wait_for(stats.drained, args.drain_timeout)
        except asyncio.TimeoutError:
            pass
    lost = stats.inflight
    for c in conns:
        c.transport.write(b"</stream:stream>")
    await asyncio.sleep(0.2)
    for c in conns:
        c.transport.close()

    lat = sorted(stats.lat)
    gen_cpu = end_sample["gen"] - begin_sample["gen"]
    srv0 = begin_sample["srv"]
    srv_cpu = None if srv0 is None or end_sample["srv"] is None else end_sample["srv"] - srv0
    mem = end_sample["mem"]
    res = {
        "server": args.label,
        "pairs": args.pairs,
        "window": args.window,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connect_s": round(connect_s, 3),
        "completed": stats.completed,
        "msgs_per_s": round(stats.completed / args.duration, 1),
        "latency_ms": {
            "p50": pct(lat, 0.50),
            "p99": pct(lat, 0.99),
            "p99.9": pct(lat, 0.999),
            "max": round(lat[-1] * 1000, 3) if lat else None,
        },
        "sent_total": stats.sent,
        "completed_after_window": stats.completed_after,
        "unacknowledged_at_exit": lost,
        "generator_cpu_s": round(gen_cpu, 3),
        "server_pid": pid,
        "server_cpu_s": None if srv_cpu is None else round(srv_cpu, 3),
        "server_rss_bytes": mem.get("VmRSS"),
        "server_rss_peak_bytes": mem.get("VmHWM"),
    }
    return res


def human(r):
    l = r["latency_ms"]
    rss = r["server_rss_bytes"]
    return (
        "{server}: pairs={pairs} window={window} duration={duration_s}s completed={completed} "
        "msg/s={msgs_per_s} p50={p50}ms p99={p99}ms p99.9={p999}ms max={mx}ms "
        "generator_cpu={gc}s server_cpu={sc}s server_rss={rss} (sent={sent}, unacked_at_exit={lost})"
    ).format(
        p50=l["p50"], p99=l["p99"], p999=l["p99.9"], mx=l["max"], gc=r["generator_cpu_s"],
        sc=r["server_cpu_s"], rss=("%.1fMiB" % (rss / 1048576)) if rss else "n/a",
        sent=r["sent_total"], lost=r["unacknowledged_at_exit"], **r
    )


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--domain", default="bench.local")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds (login not counted)")
    ap.add_argument("--warmup", type=float, default=0.0,
                    help="seconds of load before the measured window (not counted; default 0)")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON to FILE ('-' = stdout)")
    ap.add_argument("--prefix", default="u", help="account name prefix (accounts <prefix>0 .. <prefix>2P-1)")
    ap.add_argument("--password", default="benchpw")
    ap.add_argument("--server-pid", type=int, default=0, help="server process for CPU/RSS sampling")
    ap.add_argument("--label", default="xmpp", help="server name in the output")
    ap.add_argument("--body", default="hello, this is a short text")
    ap.add_argument("--connect-concurrency", type=int, default=50)
    ap.add_argument("--drain-timeout", type=float, default=30.0)
    return ap.parse_args(argv)


if __name__ == "__main__":
    a = parse_args()
    try:
        r = asyncio.run(main(a))
    except LoginError as e:
        print("login failed: %s" % e, file=sys.stderr)
        sys.exit(2)
    if a.json:
        s = json.dumps(r, indent=2)
        if a.json == "-":
            print(s)
        else:
            with open(a.json, "w") as f:
                f.write(s + "\n")
    print(human(r))
