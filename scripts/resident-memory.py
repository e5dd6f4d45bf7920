#!/usr/bin/env python3
"""Where a running replica's resident memory is: by mapping kind, by section and by module of its binary.

    python3 scripts/resident-memory.py PID [BINARY]

Reads /proc/PID/smaps (resident and anonymous kB per mapping) and /proc/PID/pagemap (which pages of the
binary are resident; needs root, as CI and this machine have), and attributes each resident page of the
binary to the ELF section it lies in (readelf) and, for code, to the module of the symbol that covers most
of it (nm; Swift symbols by their mangled module name). Used for the README's memory breakdown, e.g. while
`themis bench --local --clients 40 --duration 20` runs:

    python3 scripts/resident-memory.py $(pgrep -f 'themis-replica.*--id 0')
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = 4096


def mappings(pid):
    """(start, end, permissions, path, rss_kb, anonymous_kb) per mapping."""
    result, current = [], None
    for line in open(f"/proc/{pid}/smaps"):
        header = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if header:
            current = [int(header.group(1), 16), int(header.group(2), 16), header.group(3), header.group(4), 0, 0]
            result.append(current)
        elif line.startswith("Rss:"):
            current[4] = int(line.split()[1])
        elif line.startswith("Anonymous:"):
            current[5] = int(line.split()[1])
    return result


def symbols(binary):
    """Sorted (address, size, module) of the binary's defined symbols."""
    rows = []
    output = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        address, size, name = int(parts[0], 16), int(parts[1], 16), parts[3]
        swift = re.match(r"^\$s(\d+)([A-Za-z_]\w*)", name)
        if swift:
            module = swift.group(2)[: int(swift.group(1))]
        elif re.match(r"^\$s[sS]", name):
            module = "Swift"
        elif name.startswith(("_ZN5swift", "swift_", "_swift")):
            module = "Swift runtime (C++)"
        elif name.startswith(("CCryptoBoringSSL", "_CCrypto", "BORINGSSL")):
            module = "BoringSSL"
        else:
            module = "C (libc, libstdc++, dispatch, BoringSSL internals)"
        rows.append((address, size, module))
    rows.sort()
    return rows


def sections(binary):
    """(address, size, name) of the binary's allocated sections."""
    result = []
    output = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        match = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if match and int(match.group(2), 16):
            result.append((int(match.group(2), 16), int(match.group(3), 16), match.group(1)))
    return result


def main():
    pid = int(sys.argv[1])
    binary = sys.argv[2] if len(sys.argv) > 2 else os.readlink(f"/proc/{pid}/exe")
    maps = mappings(pid)
    kinds = collections.Counter()
    for start, end, perms, path, rss, anonymous in maps:
        if path.startswith("/") and os.path.realpath(path) == os.path.realpath(binary):
            kinds[f"binary {perms}"] += rss
        elif path.startswith("/"):
            kinds[os.path.basename(path)] += rss
        else:
            kinds[path or "anonymous"] += rss
    print(f"resident {sum(kinds.values())} kB (anonymous {sum(m[5] for m in maps)} kB)")
    for name, kb in kinds.most_common():
        if kb:
            print(f"  {kb:7d} kB  {name}")

    # Which pages of the binary are resident (non-PIE static binary: addresses are the link addresses).
    table, starts = symbols(binary), None
    starts = [row[0] for row in table]
    secs = sections(binary)
    by_section, by_module = collections.Counter(), collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end, perms, path, _, _ in maps:
            if not path.startswith("/") or os.path.realpath(path) != os.path.realpath(binary):
                continue
            pagemap.seek(start // PAGE * 8)
            entries = b""
            while len(entries) < (end - start) // PAGE * 8:  # the kernel may answer in parts
                chunk = pagemap.read((end - start) // PAGE * 8 - len(entries))
                if not chunk:
                    break
                entries += chunk
            entries = entries.ljust((end - start) // PAGE * 8, b"\0")
            for index in range((end - start) // PAGE):
                if not (struct.unpack_from("<Q", entries, index * 8)[0] >> 63) & 1:
                    continue
                page = start + index * PAGE
                section = next((name for address, size, name in secs if address < page + PAGE and address + size > page), "(none)")
                by_section[section] += 4
                if "x" not in perms:
                    continue
                overlap = collections.Counter()
                i = bisect.bisect_right(starts, page + PAGE - 1) - 1
                while i >= 0 and table[i][0] > page - (1 << 18):
                    address, size, module = table[i]
                    low, high = max(address, page), min(address + size, page + PAGE)
                    if high > low:
                        overlap[module] += high - low
                    i -= 1
                by_module[overlap.most_common(1)[0][0] if overlap else "(no symbol)"] += 4
    print(f"binary pages resident by section ({sum(by_section.values())} kB)")
    for name, kb in by_section.most_common(12):
        print(f"  {kb:7d} kB  {name}")
    print(f"binary code pages resident by module ({sum(by_module.values())} kB)")
    for name, kb in by_module.most_common(20):
        print(f"  {kb:7d} kB  {name}")


if __name__ == "__main__":
    main()
