# The SMTP server behind testkit::smtp::Sink: accepts every message on 127.0.0.1:PORT and
# saves it under DIR/messages as NAME.eml (the bytes received) and NAME.json (envelope, raw
# text, decoded headers and plain-text body). Both are written under DIR/tmp and renamed into
# place, .json last, so a reader that sees the .json sees a whole message.
#
# While DIR/fail exists, every DATA is answered 451 (a temporary refusal).
# Prints "listening" once it accepts connections; exits when its stdin closes, so it does not
# outlive a test process that was killed before it could stop it.
#
# Usage: python3 -c "$(cat smtp_sink.py)" PORT DIR

import asyncio
import email
import email.policy
import itertools
import json
import os
import sys
import threading
import time

from aiosmtpd.smtp import SMTP

port = int(sys.argv[1])
root = sys.argv[2]
messages = os.path.join(root, "messages")
tmp = os.path.join(root, "tmp")
os.makedirs(messages, exist_ok=True)
os.makedirs(tmp, exist_ok=True)
sequence = itertools.count()


def put(name, data):
    """Writes data to messages/name through tmp/, so that it appears whole or not at all."""
    staged = os.path.join(tmp, name)
    with open(staged, "wb") as f:
        f.write(data)
    os.replace(staged, os.path.join(messages, name))


def text_of(message):
    body = message.get_body(preferencelist=("plain",))
    if body is None:
        return None
    return body.get_content().replace("\r\n", "\n")


class Handler:
    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(root, "fail")):
            return "451 4.3.0 Temporary failure: the test sink is refusing mail"
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "raw": raw.decode("utf-8", errors="replace"),
            "headers": [[name, str(value)] for name, value in parsed.items()],
            "text": text_of(parsed),
        }
        # Sorts in arrival order, across restarts too.
        name = "%020d-%06d" % (time.time_ns(), next(sequence))
        put(name + ".eml", raw)
        put(name + ".json", json.dumps(record, ensure_ascii=False).encode("utf-8"))
        return "250 2.0.0 OK saved as " + name


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="sink.test", enable_SMTPUTF8=True),
        host="127.0.0.1",
        port=port,
    )
    done = asyncio.Event()

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("listening", flush=True)
    await done.wait()
    server.close()


asyncio.run(main())
