"""Starts a TLS handshake and stalls it, for gantry's tlsHandshakeTimeout test.

    python3 tests/tls_stalled_handshake.py PORT

Sends a real ClientHello (SNI www.example.com) to 127.0.0.1:PORT, then never
answers the server, and prints how many seconds passed until the server closed
the connection. Exits 1 if it stays open for 30 seconds.
"""

import socket
import ssl
import sys
import time


def client_hello():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="www.example.com")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def main():
    port = int(sys.argv[1])
    hello = client_hello()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.settimeout(30)
        started = time.monotonic()
        connection.sendall(hello)
        try:
            while connection.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            print("still open after 30 s", file=sys.stderr)
            sys.exit(1)
        print(f"{time.monotonic() - started:.3f}")


if __name__ == "__main__":
    main()
