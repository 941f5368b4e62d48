"""A small web app the preview tests run inside a sandbox (python3 >= 3.9, standard library only).

    python3 preview_app.py PORT [HOST]     (HOST defaults to 127.0.0.1: reachable only via the tunnel)

HTTP/1.1 with keep-alive, plus a WebSocket echo (RFC 6455) on the same port:

    GET  /                 an HTML page whose script opens a WebSocket back to /ws and shows the echo
    GET  /hello            "hello from the sandbox"
    GET  /headers          the request line and headers as JSON
    POST /echo             the request body back (Content-Length or chunked)
    GET  /stream           chunked: "first\\n", then (after GET /release) "second\\n", "third\\n"
    GET  /events           server-sent events: "one", then (after GET /release) "two", then the end
    GET  /release          lets the held /stream or /events go on
    GET  /redirect         302 to /hello;  /redirect-absolute: 302 to http://localhost:PORT/hello
    GET  /bytes?size=N     N bytes
    GET  /ws               WebSocket: echoes text and binary; the text "close" closes with 4001 "bye"
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>preview app</title></head>
<body><h1>preview app</h1><div id="result">pending</div>
<script>
  const prefix = location.pathname.replace(/\\/[^\\/]*$/, "");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + prefix + "/ws";
  const result = document.getElementById("result");
  const ws = new WebSocket(url);
  ws.onopen = () => ws.send("echo through " + location.host);
  ws.onmessage = (event) => { result.textContent = "got: " + event.data; result.dataset.done = "yes"; ws.close(); };
  ws.onerror = () => { result.textContent = "websocket error"; result.dataset.done = "error"; };
</script></body></html>
"""
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RELEASE = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds the body
        # back for the peer's delayed ACK (40 ms per keep-alive request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body, content_type="text/plain", headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        if path == "/":
            return self._send(200, PAGE, "text/html; charset=utf-8")
        if path == "/hello":
            return self._send(200, "hello from the sandbox\n", headers=[("Set-Cookie", "app=1; Path=/"),
                                                                          ("Set-Cookie", "other=2; Path=/")])
        if path == "/headers":
            body = {"path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}
            return self._send(200, json.dumps(body), "application/json")
        if path == "/release":
            RELEASE.set()
            return self._send(200, "released\n")
        if path in ("/stream", "/events"):
            RELEASE.clear()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if path == "/events" else "text/plain")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            parts = [b"data: one\n\n", b"data: two\n\n"] if path == "/events" else [b"first\n", b"second\n", b"third\n"]
            self._chunk(parts[0])
            RELEASE.wait(60)
            for part in parts[1:]:
                self._chunk(part)
            self.wfile.write(b"0\r\n\r\n")
            return None
        if path == "/redirect":
            return self._send(302, "", headers=[("Location", "/hello")])
        if path == "/redirect-absolute":
            port = self.server.server_address[1]
            return self._send(302, "", headers=[("Location", "http://localhost:%d/hello" % port)])
        if path == "/bytes":
            size = int(query.get("size", ["1024"])[0])
            return self._send(200, b"x" * size, "application/octet-stream")
        return self._send(404, "no such page: %s\n" % path)

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        return self._send(200, body, self.headers.get("Content-Type", "application/octet-stream"),
                          headers=[("X-Body-Length", str(len(body)))])

    # --- WebSocket ----------------------------------------------------------------------------

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        protocols = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if protocols:
            self.send_header("Sec-WebSocket-Protocol", protocols[0])
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = self._read_frame()
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:  # close: answer with the same code
                self._write_frame(0x8, payload[:2])
                return
            if opcode == 0x9:
                self._write_frame(0xA, payload)
            elif opcode == 0x1 and payload == b"close":
                self._write_frame(0x8, struct.pack("!H", 4001) + b"bye")
            elif opcode in (0x1, 0x2):
                self._write_frame(opcode, payload)

    def _read_frame(self):
        message, first_opcode = b"", None
        while True:
            header = self.rfile.read(2)
            if len(header) < 2:
                return None
            fin, opcode = header[0] & 0x80, header[0] & 0x0F
            length = header[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if header[1] & 0x80 else b"\0\0\0\0"
            data = bytearray(self.rfile.read(length))
            for i in range(len(data)):
                data[i] ^= mask[i % 4]
            if opcode >= 0x8:  # control frames come whole, even between fragments
                return opcode, bytes(data)
            first_opcode = first_opcode if opcode == 0 else opcode
            message += bytes(data)
            if fin:
                return first_opcode, message

    def _write_frame(self, opcode, payload):
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        self.wfile.write(header + payload)
        self.wfile.flush()


def main():
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    with open("/tmp/preview-app-%d.ready" % port, "w") as marker:
        marker.write(str(os.getpid()))
    server.serve_forever()


if __name__ == "__main__":
    main()
