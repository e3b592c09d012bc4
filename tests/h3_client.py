"""A minimal HTTP/3 client for gantry's tests: one GET over QUIC, with aioquic.

    PYTHONPATH=.pytools python3 tests/h3_client.py HOST PORT SERVER_NAME PATH [--cacert FILE]

Connects to HOST:PORT (UDP), sends SNI SERVER_NAME, checks the server certificate
against --cacert (without it, the certificate is not checked), sends
`GET https://SERVER_NAME:PORT/PATH` and prints the response:

    status: 200
    <header>: <value>       (one line each)
    <blank line>
    <body>

Exits 0 when a response came (any status), 1 with the error on stderr when the
connection, the handshake or the request failed or took longer than --timeout.
"""

import argparse
import asyncio
import ssl
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class Http3Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._events = {}
        self._waiters = {}

    def quic_event_received(self, event):
        for h3_event in self._http.handle_event(event):
            if not isinstance(h3_event, (HeadersReceived, DataReceived)):
                continue
            stream_id = h3_event.stream_id
            self._events.setdefault(stream_id, []).append(h3_event)
            if h3_event.stream_ended and stream_id in self._waiters:
                self._waiters.pop(stream_id).set_result(self._events.pop(stream_id))

    async def get(self, authority, path):
        stream_id = self._quic.get_next_available_stream_id()
        self._http.send_headers(
            stream_id,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
                (b"user-agent", b"gantry-test-h3"),
            ],
            end_stream=True,
        )
        waiter = self._loop.create_future()
        self._waiters[stream_id] = waiter
        self.transmit()
        return await waiter


async def request(args):
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, server_name=args.server_name
    )
    if args.cacert:
        configuration.load_verify_locations(args.cacert)
    else:
        configuration.verify_mode = ssl.CERT_NONE
    async with connect(
        args.host,
        args.port,
        configuration=configuration,
        create_protocol=Http3Client,
        wait_connected=True,
    ) as client:
        events = await client.get(f"{args.server_name}:{args.port}", args.path)
    headers, body = [], b""
    for event in events:
        if isinstance(event, HeadersReceived):
            headers.extend(event.headers)
        else:
            body += event.data
    return headers, body


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("server_name")
    parser.add_argument("path")
    parser.add_argument("--cacert")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    try:
        headers, body = asyncio.run(asyncio.wait_for(request(args), args.timeout))
    except (Exception, asyncio.TimeoutError) as error:
        print(f"h3_client: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    status = dict(headers).get(b":status", b"").decode()
    lines = [f"status: {status}"]
    lines += [f"{k.decode()}: {v.decode()}" for k, v in headers if not k.startswith(b":")]
    sys.stdout.write("\n".join(lines) + "\n\n" + body.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
