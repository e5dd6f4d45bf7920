"""Key-value client for `themis replica --app kv` (or `--app-command "python3 examples/python/kv_app.py"`),
the Python counterpart of `themis kv`, using the encoding of docs/WIRE.md section 8.

    python3 kv_client.py --config DIR/cluster.json --client N put KEY VALUE | get KEY | del KEY
    python3 kv_client.py --config DIR/cluster.json --client N check --operations 1000 --seed 7

`get` is a read-only request unless --ordered. `check` runs random operations on keys only this client uses
(`py<N>-...`), compares every result with an in-memory model, checks that the malformed operation 09 is
refused, and exits 0 only if nothing mismatched.
"""

import argparse
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themis_client import Client  # noqa: E402

PUT, GET, DELETE = 1, 2, 3
OK, PRESENT, ABSENT, ERROR = 0, 1, 2, 3
KEY_BYTES_MAX = 1024


def _key(key):
    data = key.encode("utf-8")
    if len(data) > KEY_BYTES_MAX:
        raise ValueError(f"key of {len(data)} bytes is longer than {KEY_BYTES_MAX}")
    return struct.pack(">H", len(data)) + data


def put_operation(key, value):
    return bytes([PUT]) + _key(key) + struct.pack(">I", len(value)) + value


def get_operation(key):
    return bytes([GET]) + _key(key)


def delete_operation(key):
    return bytes([DELETE]) + _key(key)


def ok_result():
    return bytes([OK])


def value_result(value):
    """The result of a get: the value, or absent for None."""
    return bytes([ABSENT]) if value is None else bytes([PRESENT]) + struct.pack(">I", len(value)) + value


def error_result(message):
    text = message.encode("utf-8")
    return bytes([ERROR]) + struct.pack(">I", len(text)) + text


def decode_result(data):
    """("ok", None), ("value", bytes or None) or ("error", str); raises ValueError if malformed."""
    if not data:
        raise ValueError("empty result")
    if data[0] in (OK, ABSENT) and len(data) == 1:
        return ("ok", None) if data[0] == OK else ("value", None)
    if data[0] in (PRESENT, ERROR) and len(data) >= 5:
        (length,) = struct.unpack_from(">I", data, 1)
        if len(data) == 5 + length:
            body = data[5:]
            return ("value", body) if data[0] == PRESENT else ("error", body.decode("utf-8"))
    raise ValueError(f"malformed result {data[:16].hex()}...")


def run_check(client, client_id, operations, seed):
    """Random operations checked against a model; returns the number of mismatches."""
    rng = random.Random(seed)
    keys = [f"py{client_id}-{index}" for index in range(16)]
    mismatches = 0

    def expect(what, got, wanted):
        nonlocal mismatches
        if got != wanted:
            mismatches += 1
            print(f"mismatch: {what}: got {got.hex()}, expected {wanted.hex()}", file=sys.stderr)

    # An earlier run may have left these keys behind: start from an empty model.
    for key in keys:
        expect(f"del {key}", client.invoke(delete_operation(key)), ok_result())
    expect("malformed operation 09", client.invoke(b"\x09"), error_result("malformed operation: unknown tag 9"))
    model = {}
    started = time.monotonic()
    for _ in range(operations):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.4:
            value = rng.randbytes(rng.randint(0, 200))
            model[key] = value
            expect(f"put {key}", client.invoke(put_operation(key, value)), ok_result())
        elif roll < 0.8:
            if rng.random() < 0.5:
                expect(f"get {key}", client.invoke(get_operation(key)), value_result(model.get(key)))
            else:
                expect(f"read-only get {key}", client.invoke_read_only(get_operation(key)),
                       value_result(model.get(key)))
        else:
            model.pop(key, None)
            expect(f"del {key}", client.invoke(delete_operation(key)), ok_result())
    elapsed = time.monotonic() - started
    print(f"checked {operations} operations: {mismatches} mismatches, {client.read_only_completed} read-only, "
          f"{client.tentative_completed} on tentative replies, {elapsed:.2f} seconds")
    return mismatches


def main():
    parser = argparse.ArgumentParser(description="Key-value client: put KEY VALUE | get KEY | del KEY | check.")
    parser.add_argument("--config", required=True, help="path of cluster.json")
    parser.add_argument("--client", required=True, type=int, help="client id")
    parser.add_argument("--key", help="private key file (default: client-<id>.key next to cluster.json)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for f+1 matching replies")
    parser.add_argument("--ordered", action="store_true", help="order a get like a write (not read-only)")
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser("put")
    put.add_argument("name", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    get = commands.add_parser("get")
    get.add_argument("name", metavar="KEY")
    get.add_argument("--ordered", action="store_true", default=argparse.SUPPRESS)
    delete = commands.add_parser("del")
    delete.add_argument("name", metavar="KEY")
    check = commands.add_parser("check", help="random operations checked against a model")
    check.add_argument("--operations", type=int, default=1000)
    check.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    try:
        with Client(args.config, args.client, key_path=args.key, timeout=args.timeout) as client:
            if args.command == "check":
                return 1 if run_check(client, args.client, args.operations, args.seed) else 0
            if args.command == "put":
                result = client.invoke(put_operation(args.name, args.value.encode("utf-8")))
            elif args.command == "del":
                result = client.invoke(delete_operation(args.name))
            elif args.ordered:
                result = client.invoke(get_operation(args.name))
            else:
                result = client.invoke_read_only(get_operation(args.name))
            kind, body = decode_result(result)
    except (OSError, ValueError, KeyError) as error:  # OSError includes TimeoutError
        print(f"kv_client: {error}", file=sys.stderr)
        return 1
    if kind == "error":
        print(f"kv_client: the store refused the operation: {body}", file=sys.stderr)
        return 1
    print("OK" if kind == "ok" else "(nil)" if body is None else body.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
