#!/usr/bin/python3
"""A Python SMTP/LMTP sink for postern's end-to-end tests (Debian's python3-aiosmtpd).

Usage: /usr/bin/python3 smtp-sink.py '<json options>'

Options: host (127.0.0.1), port (0: any), outdir (where each message is written as
NNNN.json), starttls / implicit_tls with cert and key, users ({"name": "password"})
for AUTH PLAIN/LOGIN, auth_require_tls, lmtp, defer_rcpt (answer 451 to the first N
RCPT commands), reject_prefix (550 for recipients starting with it).

Prints "READY <port>" once listening; stops when its stdin closes (the test ended)
or after 300 seconds. Listens on loopback only.
"""
import asyncio
import json
import ssl
import sys
import threading

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

opts = json.loads(sys.argv[1])
outdir = opts["outdir"]
state = {"count": 0, "rcpt_seen": 0}


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        state["rcpt_seen"] += 1
        if state["rcpt_seen"] <= opts.get("defer_rcpt", 0):
            return "451 4.3.0 <%s>: try again later" % address
        prefix = opts.get("reject_prefix")
        if prefix and address.startswith(prefix):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(" ".join(rcpt_options))
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        state["count"] += 1
        n = state["count"]
        record = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "data": envelope.original_content.decode("latin-1"),
            # implicit TLS (port 465) is the transport's; STARTTLS sets session.ssl
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
        }
        path = "%s/%04d.json" % (outdir, n)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        import os

        os.rename(path + ".tmp", path)
        if opts.get("lmtp"):
            return "\r\n".join("250 2.0.0 <%s> Saved" % r for r in envelope.rcpt_tos)
        return "250 2.0.0 Ok: queued as PY%04d" % n


def authenticator(server, session, envelope, mechanism, auth_data):
    users = opts.get("users") or {}
    if isinstance(auth_data, LoginPassword):
        login = auth_data.login.decode()
        if users.get(login) == auth_data.password.decode():
            return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


def tls_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(opts["cert"], opts["key"])
    return ctx


async def main():
    loop = asyncio.get_running_loop()
    kwargs = {"hostname": "sink.example.test", "ident": "python sink"}
    if opts.get("starttls"):
        kwargs["tls_context"] = tls_context()
    if opts.get("users"):
        kwargs["authenticator"] = authenticator
        # aiosmtpd counts only STARTTLS as TLS: with implicit TLS every connection is encrypted anyway
        kwargs["auth_require_tls"] = opts.get("auth_require_tls", True) and not opts.get("implicit_tls")
    cls = LMTP if opts.get("lmtp") else SMTP
    server = await loop.create_server(
        lambda: cls(Handler(), **kwargs),
        host=opts.get("host", "127.0.0.1"),
        port=opts.get("port", 0),
        ssl=tls_context() if opts.get("implicit_tls") else None,
    )
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    done = asyncio.Event()

    def watch_stdin():
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        await asyncio.wait_for(done.wait(), timeout=300)
    except asyncio.TimeoutError:
        pass
    server.close()


asyncio.run(main())
