"""The application side of the Themis replica-to-application protocol (docs/APPLICATION.md).

A replica started with `themis replica --app-command "python3 my_app.py"` runs this process and speaks to it
over its stdin and stdout. Subclass `Application`, implement `execute`, `snapshot` and `restore` (and `query`
for read-only requests), and call `run(MyApp())`. Only the standard library is used.

The application MUST be deterministic: every replica gives it the same operations in the same order and
compares the results and snapshots. No clocks, no randomness, no iteration order that leaks into results or
snapshots. Write logs to stderr: stdout carries the protocol.
"""

import hashlib
import os
import struct
import sys

PROTOCOL_VERSION = 1

# Replica to application.
INFO, EXECUTE, QUERY, SNAPSHOT, RESTORE = 0x01, 0x02, 0x03, 0x04, 0x05
# Application to replica.
INFO_REPLY, EXECUTED, ANSWERED, SNAPSHOT_CHUNK, RESTORED, FAILED = 0x81, 0x82, 0x83, 0x84, 0x85, 0xFF

# The largest snapshot chunk this side sends (the replica announces its largest frame in `info`).
CHUNK_BYTES = 1 << 20


class Application:
    """A deterministic state machine replicated by Themis."""

    name = "python application"

    def execute(self, operation: bytes, client: int) -> bytes:
        """Applies one ordered operation and returns its result."""
        raise NotImplementedError

    def query(self, operation: bytes, client: int):
        """Answers a read-only request on the current state without changing it (bytes), or None if the
        operation cannot be answered read-only (the client then orders it). The default answers nothing."""
        return None

    def snapshot(self) -> bytes:
        """A canonical serialization of the whole state (equal states MUST give equal bytes)."""
        raise NotImplementedError

    def restore(self, snapshot: bytes) -> None:
        """Replaces the state with a snapshot; raise if the bytes are not a valid snapshot."""
        raise NotImplementedError


class ProtocolError(Exception):
    pass


def _read_exactly(stream, count):
    data = bytearray()
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _frame(kind, body=b""):
    return struct.pack(">IB", 1 + len(body), kind) + body


class _Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, count):
        if len(self.data) - self.at < count:
            raise ProtocolError("frame ends inside a field")
        part = self.data[self.at:self.at + count]
        self.at += count
        return part

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def rest(self):
        part = self.data[self.at:]
        self.at = len(self.data)
        return part

    def end(self):
        """Checks that the frame has no bytes after its last field (before anything is applied)."""
        if self.at != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.at} bytes after the last field")

    def requests(self):
        items = []
        for _ in range(self.u32()):
            client = self.u32()
            items.append((client, self.take(self.u32())))
        return items


def run(app, stdin=None, stdout=None):
    """Serves the replica until it closes our stdin. Returns the exit status (0: the replica closed it).

    The protocol gets a private copy of stdout; file descriptor 1 and `sys.stdout` then point to stderr, so a
    stray `print` in the application goes to the log instead of corrupting the protocol."""
    stdin = stdin or sys.stdin.buffer
    if stdout is None:
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    last_applied = 0
    frame_max = 1 << 20
    restoring = None  # (sequence, total, bytearray) while restore chunks arrive

    def send(kind, body=b""):
        stdout.write(_frame(kind, body))

    try:
        while True:
            header = stdin.read(4)
            if not header:
                return 0
            if len(header) < 4:
                rest = _read_exactly(stdin, 4 - len(header))
                if rest is None:
                    raise ProtocolError("input ended inside a frame header")
                header += rest
            (length,) = struct.unpack(">I", header)
            if length == 0 or length > frame_max:
                raise ProtocolError(f"frame of {length} bytes")
            body = _read_exactly(stdin, length)
            if body is None:
                raise ProtocolError("input ended inside a frame")
            reader = _Reader(body)
            kind = reader.u8()
            if kind == INFO:
                version = reader.u16()
                frame_max = reader.u32()
                if version != PROTOCOL_VERSION:
                    raise ProtocolError(f"the replica speaks protocol version {version}, this library {PROTOCOL_VERSION}")
                name = app.name.encode("utf-8")[:65535]
                digest = hashlib.sha256(app.snapshot()).digest()
                send(INFO_REPLY, struct.pack(">HQ", PROTOCOL_VERSION, last_applied) + digest
                     + struct.pack(">H", len(name)) + name)
            elif kind == EXECUTE:
                sequence = reader.u64()
                requests = reader.requests()
                reader.end()
                parts = [struct.pack(">QI", sequence, len(requests))]
                for client, operation in requests:
                    result = app.execute(operation, client)
                    parts.append(struct.pack(">I", len(result)) + result)
                last_applied = sequence
                send(EXECUTED, b"".join(parts))
            elif kind == QUERY:
                requests = reader.requests()
                reader.end()
                parts = [struct.pack(">I", len(requests))]
                for client, operation in requests:
                    result = app.query(operation, client)
                    parts.append(b"\x00" if result is None else b"\x01" + struct.pack(">I", len(result)) + result)
                send(ANSWERED, b"".join(parts))
            elif kind == SNAPSHOT:
                sequence = reader.u64()
                reader.end()
                state = app.snapshot()
                step = max(1, min(CHUNK_BYTES, frame_max - 64))
                start = 0
                while True:
                    end = min(len(state), start + step)
                    last = end == len(state)
                    send(SNAPSHOT_CHUNK, struct.pack(">QQB", sequence, len(state), 1 if last else 0) + state[start:end])
                    if last:
                        break
                    start = end
            elif kind == RESTORE:
                sequence, total, last = reader.u64(), reader.u64(), reader.u8()
                if last > 1:
                    raise ProtocolError(f"restore chunk with last byte {last}")
                if restoring is None:
                    restoring = (sequence, total, bytearray())
                if restoring[0] != sequence or restoring[1] != total:
                    raise ProtocolError("restore chunks disagree on their sequence number or size")
                restoring[2].extend(reader.rest())
                if len(restoring[2]) > total:
                    raise ProtocolError("restore chunks exceed the announced size")
                if last:
                    if len(restoring[2]) != total:
                        raise ProtocolError("the last restore chunk ends before the announced size")
                    app.restore(bytes(restoring[2]))
                    restoring = None
                    last_applied = sequence
                    send(RESTORED, struct.pack(">Q", sequence))
            else:
                raise ProtocolError(f"unknown frame kind {kind:#x}")
            reader.end()
            stdout.flush()
    except Exception as error:  # the replica stops with this reason; never go on from an unsure state
        try:
            send(FAILED, f"{type(error).__name__}: {error}".encode("utf-8"))
            stdout.flush()
        except OSError:
            pass
        print(f"{app.name}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1



def serve_socket(make_app, path):
    """Listens on the Unix socket `path` for a replica started with `--app-socket PATH`, and serves one
    replica connection at a time, each with a fresh application from `make_app()` (a replica starts its
    application empty). Runs until interrupted."""
    import socket

    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    print(f"listening on {path}", file=sys.stderr)
    try:
        while True:
            connection, _ = server.accept()
            with connection, connection.makefile("rb") as reader, connection.makefile("wb") as writer:
                status = run(make_app(), stdin=reader, stdout=writer)
            print(f"replica disconnected (status {status}); waiting for the next one", file=sys.stderr)
    finally:
        server.close()
        os.unlink(path)


def main(make_app):
    """`python3 my_app.py` serves stdin/stdout (`--app-command`); `python3 my_app.py --socket PATH` serves
    replicas connecting to PATH (`--app-socket`). Returns the exit status."""
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "--socket":
        serve_socket(make_app, arguments[1])
        return 0
    return run(make_app())
