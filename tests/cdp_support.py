"""Drive Debian's headless chromium over the DevTools protocol, on loopback, stdlib only.

Chromium is started with ``--remote-debugging-port=0`` (it binds 127.0.0.1 and prints the
browser's WebSocket URL on stderr); a minimal RFC 6455 client speaks the protocol. A test
opens a page, clicks with real mouse events, presses keys, reads the DOM and takes
screenshots: what a person with a mouse or a keyboard does, not just a dump of the DOM.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)")
_KEYS = {"Tab": ("Tab", 9, ""), "Enter": ("Enter", 13, "\r")}


class _Socket:
    """One client WebSocket: masked text frames out, unmasked frames in."""

    def __init__(self, url: str, timeout: float) -> None:
        parsed = urlparse(url)
        assert parsed.hostname == "127.0.0.1"
        self.sock = socket.create_connection(("127.0.0.1", parsed.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parsed.path} HTTP/1.1\r\nHost: 127.0.0.1:{parsed.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "chromium closed the DevTools connection"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head[:80]

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            out += chunk
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._exact(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack(">H", self._exact(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(size)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools connection closed")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()


class Browser:
    """A headless chromium and one page (tab) in it, driven over the DevTools protocol."""

    def __init__(self, binary: str, profile: Path, *, timeout: float = 60) -> None:
        self.timeout = timeout
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1100,1400",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            [binary, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        found: queue.Queue[str] = queue.Queue()

        def watch() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                match = _LISTENING.search(line)
                if match:
                    found.put(match.group(1))

        threading.Thread(target=watch, daemon=True).start()
        try:
            url = found.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise RuntimeError("chromium did not open its DevTools port") from None
        self.ws = _Socket(url, timeout)
        self._next = 0
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session: str | None = attached["sessionId"]
        self.call("Page.enable")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if getattr(self, "session", None) is not None:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            answer = json.loads(self.ws.receive())
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer["result"]
                return result
            self._events.append(answer)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for index, seen in enumerate(self._events):
                if seen.get("method") == event:
                    del self._events[: index + 1]
                    return
            assert time.monotonic() < deadline, f"no {event} from chromium"
            self._events.append(json.loads(self.ws.receive()))

    def _expect_load(self) -> None:
        self._events = [e for e in self._events if e.get("method") != "Page.loadEventFired"]

    def goto(self, url: str) -> None:
        self._expect_load()
        self.call("Page.navigate", {"url": url})
        self._wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"page script failed: {answer['exceptionDetails'].get('text')}")
        return answer["result"].get("value")

    def click(self, selector: str) -> None:
        """Click the element's centre with real mouse events and wait for the next page."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        assert box is not None, f"nothing on the page matches {selector}"
        self._expect_load()
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )
        self._wait_for("Page.loadEventFired")

    def press(self, key: str, *, loads: bool = False) -> None:
        """Press and release a key (``Tab`` or ``Enter``); ``loads``: wait for a new page."""
        name, code, text = _KEYS[key]
        if loads:
            self._expect_load()
        base = {"key": name, "code": name, "windowsVirtualKeyCode": code}
        self.call("Input.dispatchKeyEvent", {"type": "keyDown", **base, "text": text})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **base})
        if loads:
            self._wait_for("Page.loadEventFired")

    def screenshot(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
