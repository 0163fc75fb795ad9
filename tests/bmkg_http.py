"""A local stand-in for BMKG's web server, for ``dampak feed bmkg`` tests: recorded bulletins, and
the hostile answers a broken or malicious server gives (endless and dripping bodies, redirects to
``file:``, entity bombs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BILLION_LAUGHS", "BmkgServer", "Route", "drip", "endless", "header_drip", "redirect"]

#: Writes the whole answer to a request (status line included).
Route = tuple[int, bytes] | Callable[[BaseHTTPRequestHandler], None]

#: The classic entity bomb (10^9 "lol"s from under 1 KB), as a CAP document.
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>'
)


class BmkgServer:
    """Serves ``routes`` (path -> route) on 127.0.0.1; change them between polls."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = server.routes.get(self.path, (404, b"not found"))
                try:
                    if callable(route):
                        route(self)
                    else:
                        status, body = route
                        self.send_response(status)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: what a refused answer looks like from here

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def endless(limit: int = 64 * 1024 * 1024) -> Route:
    """Zeros with no Content-Length, until the client hangs up (or ``limit``, so that a client
    without a cap ends instead of taking the machine's memory)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        block = b"\0" * 65536
        for _ in range(limit // len(block)):
            h.wfile.write(block)

    return route


def drip(body: bytes, seconds: float, pieces: int = 40) -> Route:
    """``body`` (a valid answer) in ``pieces`` spread over ``seconds``: every read gets bytes well
    within any socket timeout, so only a total deadline ends it early."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        step = max(1, -(-len(body) // pieces))
        for i in range(0, len(body), step):
            time.sleep(seconds / pieces)
            h.wfile.write(body[i : i + step])
            h.wfile.flush()

    return route


def header_drip(seconds: float) -> Route:
    """A status line and headers one byte at a time over ``seconds``, then a 404."""

    def route(h: BaseHTTPRequestHandler) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 60 + b"\r\n"
        for i in range(len(head)):
            time.sleep(seconds / len(head))
            h.wfile.write(head[i : i + 1])
            h.wfile.flush()
        h.wfile.write(b"Content-Length: 0\r\n\r\n")
        h.close_connection = True

    return route


def redirect(location: str) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route
