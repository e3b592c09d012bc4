"""An HTTPS backend for gantry's Backend TLS tests.

    python3 tests/tls_backend.py PORT CERT KEY [--proxy-protocol] [--client-ca CA] [--alpn P1,P2]

Listens on 127.0.0.1:PORT and answers every request 200 with a JSON body
telling what the client did: the SNI it sent ("sni", null without one), with
--proxy-protocol the PROXY header read off the connection before the TLS
handshake ("proxy": a v1 line as sent, or "v2 <source address>"), with --client-ca (a client certificate that CA signed is
then required) the common name of the client's certificate ("client"), and
the TLS version ("version") and ALPN protocol ("alpn", of http/1.1 and h2, or
--alpn's list, in the backend's order of preference) the handshake settled on. Prints "ready" once listening, one line per failed
handshake (so the test's log shows why a connection went nowhere), and
"request <method> <path> host=<Host header>" per request.
"""

import json
import socket
import ssl
import sys
import threading


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_proxy_header(conn):
    """A PROXY v1 line, or a v2 header as "v2 <source IPv4 address>"."""
    first = conn.recv(1)
    if first != b"\r":
        return read_line(conn, first)
    header = first + read_exact(conn, 15)
    body = read_exact(conn, int.from_bytes(header[14:16], "big"))
    if header[:12] != b"\r\n\r\n\x00\r\nQUIT\n" or header[13] != 0x11 or len(body) < 12:
        return "v2 " + header.hex()
    return "v2 " + ".".join(str(b) for b in body[:4])


def read_line(conn, line=b""):
    """The bytes up to and with the first CRLF (a PROXY v1 header)."""
    while not line.endswith(b"\r\n") and len(line) < 108:
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return line.decode("ascii", "replace").rstrip("\r\n")


def serve(conn, context, proxy_protocol):
    seen = {"sni": None, "proxy": None, "client": None}
    if proxy_protocol:
        seen["proxy"] = read_proxy_header(conn)

    def record_sni(_socket, server_name, _context):
        seen["sni"] = server_name

    context.sni_callback = record_sni
    try:
        tls = context.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        print(f"handshake failed: {e}", flush=True)
        conn.close()
        return
    with tls:
        subject = dict(pair[0] for pair in (tls.getpeercert() or {}).get("subject", ()))
        seen["client"] = subject.get("commonName")
        seen["version"] = tls.version()
        seen["alpn"] = tls.selected_alpn_protocol()
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = tls.recv(4096)
            if not chunk:
                return
            request += chunk
        head = request.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        host = next(
            (l.split(":", 1)[1].strip() for l in head[1:] if l.lower().startswith("host:")),
            None,
        )
        print(f"request {' '.join(head[0].split()[:2])} host={host}", flush=True)
        body = json.dumps(seen).encode()
        tls.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    options = sys.argv[4:]
    proxy_protocol = "--proxy-protocol" in options
    client_ca = options[options.index("--client-ca") + 1] if "--client-ca" in options else None
    alpn = options[options.index("--alpn") + 1].split(",") if "--alpn" in options else ["http/1.1", "h2"]
    listener = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        # A context per connection: its SNI callback records this connection's.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(alpn)
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        threading.Thread(
            target=serve, args=(conn, context, proxy_protocol), daemon=True
        ).start()


if __name__ == "__main__":
    main()
