"""A TCP proxy that counts what clients send to a server: connections and round
trips (each simple-protocol Query and each extended-protocol Sync waits for
the server's ReadyForQuery). The wire is the measure: no client code is
replaced or wrapped.

Connect through it with sslmode=disable (an encrypted stream cannot be read).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress

# Startup-phase request codes (the protocol's magic numbers).
_STARTUP = 196608  # protocol 3.0
_CANCEL = 80877102
_PRE_STARTUP = (80877103, 80877104)  # SSLRequest, GSSENCRequest: another follows
_ROUND_TRIPS = (b"Q", b"S")


class CountingProxy:
    """Relays 127.0.0.1:port to the server and counts client messages."""

    def __init__(self, server_host: str, server_port: int) -> None:
        self._target = (server_host, server_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._spawn(self._accept)

    def counts(self) -> dict[str, int]:
        """Return {"connections": N, "round_trips": N, "cancels": N} so far."""
        with self._lock:
            return {
                key: self._counts[key]
                for key in ("connections", "round_trips", "cancels")
            }

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def close(self) -> None:
        self._closed = True
        for sock in [self._listener, *self._sockets]:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            self._spawn(self._client_to_server, client, server)
            self._spawn(self._relay, server, client)

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        buffer = b""
        startup = True
        with suppress(OSError):
            while chunk := client.recv(65536):
                # Counted before it is sent: once the client has an answer,
                # its message is counted.
                buffer, startup = self._parse(buffer + chunk, startup)
                server.sendall(chunk)
        with suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _parse(self, buffer: bytes, startup: bool) -> tuple[bytes, bool]:
        while True:
            if startup:
                if len(buffer) < 8:
                    return buffer, startup
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    return buffer, startup
                buffer = buffer[length:]
                if code == _STARTUP:
                    self._count("connections")
                    startup = False
                elif code == _CANCEL:
                    self._count("cancels")
                elif code not in _PRE_STARTUP:
                    startup = False
                continue
            if len(buffer) < 5:
                return buffer, startup
            kind = buffer[:1]
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                return buffer, startup
            buffer = buffer[1 + length :]
            if kind in _ROUND_TRIPS:
                self._count("round_trips")


@contextmanager
def counting_proxy(server_host: str, server_port: int) -> Iterator[CountingProxy]:
    proxy = CountingProxy(server_host, server_port)
    try:
        yield proxy
    finally:
        proxy.close()
