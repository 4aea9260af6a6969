"""A real HTTP receiver of webhook deliveries on loopback, for tests: it answers each request with the next
behaviour of a script ("fail" → 500, "hang" → answers nothing for `hang_seconds`, "ok" → 200; the last one
repeats), and records every request (path, headers, exact body) in arrival order. With `held` set, "ok"
answers 500 until `release()`: a receiver that stays down until the test says it recovered."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status sent (None: it hung)

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    script: list[str] = field(default_factory=lambda: ["ok"])
    hang_seconds: float = 3.0
    received: list[Received] = field(default_factory=list)
    held: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    step = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                    code = {"ok": 500 if receiver.held else 200, "fail": 500}.get(step)
                    receiver.received.append(Received(self.path, dict(self.headers), body, code))
                if code is None:
                    time.sleep(receiver.hang_seconds)
                    return
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def release(self) -> None:
        """From now on "ok" answers 200."""
        with self._lock:
            self.held = False

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
