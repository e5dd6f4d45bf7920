"""The benchmark application of `themis replica --app bench`, in Python (for `themis bench --local
--app-command "python3 examples/python/bench_app.py REPLY_BYTES"`): it counts the operations it executed and
answers each with REPLY_BYTES bytes (the count, big-endian, then filler), as `BenchmarkApplication` does.
An operation starting with 0x52 ("R") is a read: it does not count, and it is answered read-only.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themis_app import Application, run  # noqa: E402

READ_MARKER = 0x52


class BenchmarkApp(Application):
    name = "python bench"

    def __init__(self, reply_bytes):
        self.reply_bytes = reply_bytes
        self.executed = 0
        self.filler = bytes(index % 256 for index in range(max(8, reply_bytes)))

    def _reply(self):
        count = struct.pack(">Q", self.executed)
        if self.reply_bytes <= 8:
            return count[:self.reply_bytes]
        return count + self.filler[8:self.reply_bytes]

    def execute(self, operation, client):
        if not operation or operation[0] != READ_MARKER:
            self.executed = (self.executed + 1) & 0xFFFFFFFFFFFFFFFF
        return self._reply()

    def query(self, operation, client):
        if not operation or operation[0] != READ_MARKER:
            return None
        return self._reply()

    def snapshot(self):
        return struct.pack(">Q", self.executed)

    def restore(self, snapshot):
        if len(snapshot) != 8:
            raise ValueError(f"a benchmark snapshot has 8 bytes, got {len(snapshot)}")
        (self.executed,) = struct.unpack(">Q", snapshot)


if __name__ == "__main__":
    sys.exit(run(BenchmarkApp(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
