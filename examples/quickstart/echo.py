#!/usr/bin/env python3
"""A tiny echo backend for the quickstart: answers every request with a JSON
document naming the backend and echoing the method, path, host and headers it got."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1] if len(sys.argv) > 1 else "echo"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        reply = json.dumps(
            {
                "backend": NAME,
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host"),
                "headers": {k: v for k, v in self.headers.items()},
                "body": body,
            },
            indent=2,
        ).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = answer

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", PORT), Echo).serve_forever()
