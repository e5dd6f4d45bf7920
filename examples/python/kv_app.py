"""The key-value store of `themis replica --app kv`, in Python, as an out-of-process application.

    themis replica --config DIR/cluster.json --id 0 --app-command "python3 examples/python/kv_app.py"
    python3 examples/python/kv_app.py --socket /tmp/kv-0.sock    # then: themis replica ... --app-socket /tmp/kv-0.sock

Operations, results and snapshots are byte for byte those of the Swift `KeyValueStore` (docs/WIRE.md
section 8), so `themis kv`, the Swift client and a cluster mixing Swift and Python replicas agree.
"""

import struct
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themis_app import Application, main  # noqa: E402

KEY_BYTES_MAX = 1024
VALUE_BYTES_MAX = 64 * 1024
MAGIC = b"tkv1"


class Malformed(Exception):
    pass


def _result_ok():
    return b"\x00"


def _result_value(value):
    return b"\x02" if value is None else b"\x01" + struct.pack(">I", len(value)) + value


def _result_error(message):
    text = message.encode("utf-8")
    return b"\x03" + struct.pack(">I", len(text)) + text


def _read_key(data, at):
    if len(data) - at < 2:
        raise Malformed("input ends inside a field")
    (length,) = struct.unpack_from(">H", data, at)
    at += 2
    if length > KEY_BYTES_MAX:
        raise Malformed(f"key of {length} bytes is longer than {KEY_BYTES_MAX}")
    if len(data) - at < length:
        raise Malformed("input ends inside a field")
    key = data[at:at + length]
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("text is not valid UTF-8")
    return key, at + length


def decode(operation):
    """(tag, key, value) of an operation; raises Malformed with the Swift store's reasons."""
    if not operation:
        raise Malformed("empty input")
    tag = operation[0]
    if tag not in (1, 2, 3):
        raise Malformed(f"unknown tag {tag}")
    key, at = _read_key(operation, 1)
    value = None
    if tag == 1:
        if len(operation) - at < 4:
            raise Malformed("input ends inside a field")
        (length,) = struct.unpack_from(">I", operation, at)
        at += 4
        if length > VALUE_BYTES_MAX:
            raise Malformed(f"value of {length} bytes is larger than {VALUE_BYTES_MAX}")
        if len(operation) - at < length:
            raise Malformed("input ends inside a field")
        value = operation[at:at + length]
        at += length
    if at != len(operation):
        raise Malformed(f"{len(operation) - at} bytes after the last field")
    return tag, key, value


class KeyValueApp(Application):
    name = "python kv"

    def __init__(self, entries_max=1 << 20):
        self.entries = {}
        self.entries_max = entries_max

    def execute(self, operation, client):
        try:
            tag, key, value = decode(operation)
        except Malformed as error:
            return _result_error(f"malformed operation: {error}")
        if tag == 1:
            if key not in self.entries and len(self.entries) >= self.entries_max:
                return _result_error(f"store is full ({self.entries_max} entries)")
            self.entries[key] = value
            return _result_ok()
        if tag == 2:
            return _result_value(self.entries.get(key))
        self.entries.pop(key, None)
        return _result_ok()

    def query(self, operation, client):
        try:
            tag, key, _ = decode(operation)
        except Malformed:
            return None
        if tag != 2:
            return None
        return _result_value(self.entries.get(key))

    def snapshot(self):
        parts = [MAGIC, struct.pack(">I", len(self.entries))]
        for key in sorted(self.entries):
            value = self.entries[key]
            parts.append(struct.pack(">H", len(key)) + key + struct.pack(">I", len(value)) + value)
        return b"".join(parts)

    def restore(self, snapshot):
        if snapshot[:4] != MAGIC:
            raise ValueError("not a key-value snapshot")
        if len(snapshot) < 8:
            raise ValueError("input ends inside a field")
        (count,) = struct.unpack_from(">I", snapshot, 4)
        if count > self.entries_max:
            raise ValueError(f"{count} entries, at most {self.entries_max} allowed")
        at, entries, previous = 8, {}, None
        for _ in range(count):
            try:
                key, at = _read_key(snapshot, at)
            except Malformed as error:
                raise ValueError(str(error))
            if previous is not None and not previous < key:
                raise ValueError("snapshot keys are not strictly ascending")
            if len(snapshot) - at < 4:
                raise ValueError("input ends inside a field")
            (length,) = struct.unpack_from(">I", snapshot, at)
            at += 4
            if length > VALUE_BYTES_MAX:
                raise ValueError(f"value of {length} bytes is larger than {VALUE_BYTES_MAX}")
            if len(snapshot) - at < length:
                raise ValueError("input ends inside a field")
            entries[key] = snapshot[at:at + length]
            at += length
            previous = key
        if at != len(snapshot):
            raise ValueError(f"{len(snapshot) - at} bytes after the last field")
        self.entries = entries


if __name__ == "__main__":
    sys.exit(main(KeyValueApp))
