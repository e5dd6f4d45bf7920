#!/usr/bin/env python3
"""A cluster of hosts on one machine: one network namespace per host, joined by a switch with per-link
delay and loss.

    netns-cluster.sh up --hosts 4 --delay 5 --loss 1     # namespaces themis-0..3 at 10.231.7.1..4
    ip netns exec themis-0 themis replica --config DIR/cluster.json --id 0 ...
    netns-cluster.sh set --delay 1 --loss 0              # every link; --link 0-2 for one pair
    netns-cluster.sh status                              # settings and per-link packet counts
    netns-cluster.sh down

Host i (0-based) lives in namespace NAME-i with address SUBNET.(i+1); the machine itself (the root
namespace, where clients and `themis bench` run) is the host `h` at SUBNET.254. Each host has one TAP device;
one user-space process owns all of them and forwards Ethernet frames between them like a learning switch,
holding each frame for the link's delay and dropping it with the link's loss probability. Delay is one-way
(a round trip between two hosts costs twice it) and constant, so a link never reorders.

Why not veth pairs, a bridge and `tc netem`: the kernels of the machines this runs on (CI included) are
built without sch_netem (CONFIG_NET_SCH_NETEM is not set; `tc qdisc add ... netem` answers "Specified qdisc
kind is unknown"). The switch needs only TUN/TAP and network namespaces. Its cost is measured in the README
(figures at 0 ms delay are with the switch in the path, not loopback).

Needs root (namespaces, /dev/net/tun) and the `ip` command (iproute2). Exit status 2 with one line on
stderr when the machine does not allow it.
"""
import argparse
import errno
import fcntl
import heapq
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
STATE_ROOT = "/run/themis-netns"


class Refused(Exception):
    """The machine or the arguments do not allow it: one line for the user, exit status 2."""


def run(*command, check=True):
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise Refused(f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()}")
    return result


def state_dir(name):
    return os.path.join(STATE_ROOT, name)


def read_json(path, default=None):
    try:
        with open(path) as file:
            return json.load(file)
    except FileNotFoundError:
        return default


def write_json(path, value):
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(value, file, indent=1, sort_keys=True)
    os.replace(temporary, path)


def link_key(a, b):
    return f"{a}-{b}"


def check_machine():
    if os.geteuid() != 0:
        raise Refused("needs root (network namespaces and /dev/net/tun)")
    if shutil.which("ip") is None:
        raise Refused("needs the `ip` command (Debian: apt-get install iproute2)")
    if not os.path.exists("/dev/net/tun"):
        raise Refused("needs /dev/net/tun (a kernel with TUN/TAP)")


def probe():
    """Whether this machine lets us make a host: a namespace and a TAP device (`check`)."""
    check_machine()
    namespace = f"thmprobe{os.getpid() % 100000}"
    run("ip", "netns", "add", namespace)
    try:
        os.close(open_tap(namespace))
    finally:
        run("ip", "netns", "del", namespace, check=False)
    print("netns-cluster: this machine allows network namespaces and TAP devices")


def check_name(name):
    if not (1 <= len(name) <= 10) or not all(c.isalnum() for c in name):
        raise Refused(f"--name must be 1 to 10 letters or digits (got {name!r})")


def parse_subnet(subnet):
    parts = subnet.split(".")
    if len(parts) != 3 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise Refused(f"--subnet must be the first three octets of a /24, such as 10.231.7 (got {subnet!r})")
    return subnet


# ---------------------------------------------------------------- up / down


def namespaces_of(name):
    listed = run("ip", "netns", "list", check=False).stdout.split("\n")
    prefix = name + "-"
    return [line.split()[0] for line in listed if line.split() and line.split()[0].startswith(prefix)
            and line.split()[0][len(prefix):].isdigit()]


def down(name, quiet=False):
    directory = state_dir(name)
    pid = read_json(os.path.join(directory, "switch.json"), {}).get("pid")
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.02)
        except ProcessLookupError:
            pass
    for namespace in namespaces_of(name):
        for pid_text in run("ip", "netns", "pids", namespace, check=False).stdout.split():
            try:
                os.kill(int(pid_text), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run("ip", "netns", "del", namespace, check=False)
    run("ip", "link", "del", f"{name}-h", check=False)
    shutil.rmtree(directory, ignore_errors=True)
    if not quiet:
        print(f"netns cluster {name}: down")


def open_tap(device):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", device.encode(), IFF_TAP | IFF_NO_PI))
    except OSError as error:
        os.close(fd)
        raise Refused(f"cannot create TAP device {device}: {error.strerror}")
    return fd


def up(arguments):
    check_machine()
    name, subnet = arguments.name, parse_subnet(arguments.subnet)
    check_name(name)
    if not (1 <= arguments.hosts <= 200):
        raise Refused(f"--hosts must be 1 to 200 (got {arguments.hosts})")
    validate_link(arguments.delay, arguments.loss)
    down(name, quiet=True)  # leftovers of an earlier run of the same name
    directory = state_dir(name)
    os.makedirs(directory, exist_ok=True)
    ports = []  # (label, fd)
    try:
        for index in range(arguments.hosts):
            namespace, device = f"{name}-{index}", f"{name}-{index}"
            run("ip", "netns", "add", namespace)
            fd = open_tap(device)
            ports.append((str(index), fd))
            run("ip", "link", "set", device, "netns", namespace)
            run("ip", "-n", namespace, "link", "set", "lo", "up")
            run("ip", "-n", namespace, "link", "set", device, "mtu", str(arguments.mtu))
            run("ip", "-n", namespace, "addr", "add", f"{subnet}.{index + 1}/24", "dev", device)
            run("ip", "-n", namespace, "link", "set", device, "up")
        device = f"{name}-h"
        fd = open_tap(device)
        ports.append(("h", fd))
        run("ip", "link", "set", device, "mtu", str(arguments.mtu))
        run("ip", "addr", "add", f"{subnet}.254/24", "dev", device)
        run("ip", "link", "set", device, "up")
    except Refused:
        for _, fd in ports:
            os.close(fd)
        down(name, quiet=True)
        raise
    write_json(os.path.join(directory, "links.json"),
               {"default": {"delayMs": arguments.delay, "lossPercent": arguments.loss}, "links": {}})
    hosts = {str(i): f"{subnet}.{i + 1}" for i in range(arguments.hosts)}
    hosts["h"] = f"{subnet}.254"
    write_json(os.path.join(directory, "hosts.json"), hosts)

    child = os.fork()
    if child == 0:
        os.setsid()
        log = os.open(os.path.join(directory, "switch.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # Whatever else the caller left open (a test harness's output pipe) would never see its end of file.
        keep = {0, 1, 2} | {fd for _, fd in ports}
        for fd in [int(entry) for entry in os.listdir("/proc/self/fd")]:
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        try:
            Switch(directory, ports, arguments.seed).run()
        except BaseException as error:  # the log is the only place anyone will see it
            print(f"switch stopped: {error!r}", flush=True)
            os._exit(1)
        os._exit(0)
    for _, fd in ports:
        os.close(fd)
    write_json(os.path.join(directory, "switch.json"), {"pid": child})
    print(f"netns cluster {name}: {arguments.hosts} hosts, delay {arguments.delay} ms one-way, "
          f"loss {arguments.loss} % per link, MTU {arguments.mtu} (switch pid {child})")
    for index in range(arguments.hosts):
        print(f"  host {index}: namespace {name}-{index}, address {subnet}.{index + 1}")
    print(f"  this machine: {subnet}.254 (device {name}-h)")
    print(f"run a command on host i: ip netns exec {name}-i COMMAND")


# ---------------------------------------------------------------- set / status


def validate_link(delay, loss):
    if not (0 <= delay <= 10_000):
        raise Refused(f"--delay must be 0 to 10000 ms (got {delay})")
    if not (0 <= loss <= 100):
        raise Refused(f"--loss must be 0 to 100 percent (got {loss})")


def switch_pid(name):
    pid = read_json(os.path.join(state_dir(name), "switch.json"), {}).get("pid")
    if not pid:
        raise Refused(f"netns cluster {name} is not up (run: netns-cluster.sh up --hosts N)")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise Refused(f"the switch of netns cluster {name} (pid {pid}) is not running; see "
                      f"{state_dir(name)}/switch.log, then run down and up again")
    return pid


def set_links(arguments):
    pid = switch_pid(arguments.name)
    path = os.path.join(state_dir(arguments.name), "links.json")
    settings = read_json(path)
    hosts = read_json(os.path.join(state_dir(arguments.name), "hosts.json"))
    if arguments.link is None:
        current = settings["default"]
    else:
        ends = arguments.link.split("-")
        if len(ends) != 2 or not all(end in hosts for end in ends) or ends[0] == ends[1]:
            raise Refused(f"--link must be two different hosts A-B among {', '.join(sorted(hosts))} (got {arguments.link!r})")
        current = dict(settings["links"].get(link_key(*ends), settings["default"]))
    delay = current["delayMs"] if arguments.delay is None else arguments.delay
    loss = current["lossPercent"] if arguments.loss is None else arguments.loss
    validate_link(delay, loss)
    value = {"delayMs": delay, "lossPercent": loss}
    if arguments.link is None:
        settings["default"] = value
        settings["links"] = {} if arguments.reset_links else settings["links"]
    else:
        a, b = arguments.link.split("-")
        settings["links"][link_key(a, b)] = value
        settings["links"][link_key(b, a)] = value
    write_json(path, settings)
    os.kill(pid, signal.SIGHUP)
    print(f"netns cluster {arguments.name}: {arguments.link or 'every link'}: delay {delay} ms, loss {loss} %")


def status(arguments):
    pid = switch_pid(arguments.name)
    directory = state_dir(arguments.name)
    stats_path = os.path.join(directory, "stats.json")
    before = os.stat(stats_path).st_mtime_ns if os.path.exists(stats_path) else 0
    os.kill(pid, signal.SIGUSR1)
    for _ in range(100):
        if os.path.exists(stats_path) and os.stat(stats_path).st_mtime_ns != before:
            break
        time.sleep(0.02)
    settings = read_json(os.path.join(directory, "links.json"))
    stats = read_json(stats_path, {"links": {}})
    default = settings["default"]
    print(f"netns cluster {arguments.name}: switch pid {pid}, default delay {default['delayMs']} ms, "
          f"loss {default['lossPercent']} %")
    for host, address in sorted(read_json(os.path.join(directory, "hosts.json")).items()):
        print(f"  host {host}: {address}")
    print(f"  {'link':>6}  {'delay ms':>8}  {'loss %':>6}  {'forwarded':>10}  {'dropped':>8}")
    for key, counts in sorted(stats["links"].items()):
        link = settings["links"].get(key, default)
        print(f"  {key:>6}  {link['delayMs']:>8}  {link['lossPercent']:>6}  {counts[0]:>10}  {counts[1]:>8}")


# ---------------------------------------------------------------- the switch


class Switch:
    """Forwards Ethernet frames between TAP devices: learns where each MAC address is, floods frames for
    unknown and group addresses, holds each frame for its link's delay and drops it with its loss."""

    def __init__(self, directory, ports, seed):
        self.directory = directory
        self.labels = [label for label, _ in ports]
        self.fds = [fd for _, fd in ports]
        self.by_fd = {fd: index for index, fd in enumerate(self.fds)}
        self.where = {}  # MAC address -> port index
        self.pending = []  # heap of (due, sequence, port, frame)
        self.sequence = 0
        self.random = random.Random(seed)
        self.counts = {}  # (from, to) -> [forwarded, dropped]
        self.reload = True
        self.report = False
        self.running = True

    def load(self):
        settings = read_json(os.path.join(self.directory, "links.json"))
        self.links = {}
        for a in range(len(self.labels)):
            for b in range(len(self.labels)):
                if a != b:
                    link = settings["links"].get(link_key(self.labels[a], self.labels[b]), settings["default"])
                    self.links[(a, b)] = (link["delayMs"] / 1000.0, link["lossPercent"] / 100.0)
        print(f"links loaded: default {settings['default']}, {len(settings['links'])} set one by one", flush=True)

    def write_stats(self):
        write_json(os.path.join(self.directory, "stats.json"), {"links": {
            link_key(self.labels[a], self.labels[b]): counts for (a, b), counts in self.counts.items()}})

    def deliver(self, port, frame):
        try:
            os.write(self.fds[port], frame)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EIO, errno.ENOBUFS):
                raise

    def forward(self, source, frame, now):
        if len(frame) < 14:
            return
        destination, origin = frame[0:6], frame[6:12]
        self.where[origin] = source
        target = self.where.get(destination)
        if destination[0] & 1 or target is None:
            targets = [port for port in range(len(self.fds)) if port != source]
        elif target == source:
            return
        else:
            targets = [target]
        for port in targets:
            delay, loss = self.links[(source, port)]
            counts = self.counts.setdefault((source, port), [0, 0])
            if loss > 0 and self.random.random() < loss:
                counts[1] += 1
                continue
            counts[0] += 1
            if delay == 0 and not self.pending:
                self.deliver(port, frame)
            else:
                self.sequence += 1
                heapq.heappush(self.pending, (now + delay, self.sequence, port, frame))

    def run(self):
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        signal.signal(signal.SIGUSR1, lambda *_: setattr(self, "report", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        while self.running:
            if self.reload:
                self.reload = False
                self.load()
            if self.report:
                self.report = False
                self.write_stats()
            # Bounded: a signal's flag (reload, report) is seen within a quarter second on an idle network.
            timeout = 0.25 if not self.pending else min(0.25, max(0.0, self.pending[0][0] - time.monotonic()))
            # select, not epoll: epoll_wait rounds its timeout up to whole milliseconds, which would add up to
            # 1 ms to every delayed frame; select's is in microseconds.
            readable, _, _ = select.select(self.fds, [], [], timeout)
            now = time.monotonic()
            for fd in readable:
                source = self.by_fd[fd]
                for _ in range(64):
                    try:
                        frame = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    self.forward(source, frame, now)
            now = time.monotonic()
            while self.pending and self.pending[0][0] <= now:
                _, _, port, frame = heapq.heappop(self.pending)
                self.deliver(port, frame)
        print("switch stopped (SIGTERM)", flush=True)


# ---------------------------------------------------------------- command line


def main():
    parser = argparse.ArgumentParser(prog="netns-cluster.sh", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="create the hosts and start the switch")
    up_parser.add_argument("--hosts", type=int, default=4, help="number of hosts (one per replica)")
    up_parser.add_argument("--delay", type=float, default=0, help="one-way delay of every link, ms")
    up_parser.add_argument("--loss", type=float, default=0, help="loss of every link, percent of frames")
    up_parser.add_argument("--mtu", type=int, default=1500, help="MTU of every host's device")
    up_parser.add_argument("--seed", type=int, default=1, help="seed of the loss decisions")
    set_parser = commands.add_parser("set", help="change delay and loss of every link, or of one (--link A-B)")
    set_parser.add_argument("--delay", type=float, help="one-way delay, ms")
    set_parser.add_argument("--loss", type=float, help="loss, percent of frames")
    set_parser.add_argument("--link", help="one pair of hosts, both directions: 0-1, or 0-h for this machine")
    set_parser.add_argument("--reset-links", action="store_true", help="forget the per-link settings")
    commands.add_parser("status", help="settings and per-link counts of forwarded and dropped frames")
    commands.add_parser("down", help="stop the switch and delete the hosts (and every process in them)")
    commands.add_parser("check", help="exit 0 if this machine allows the hosts (root, ip, namespaces, TAP), else 2 and why")
    for command in commands.choices.values():
        command.add_argument("--name", default="themis", help="prefix of the namespaces (default themis)")
        command.add_argument("--subnet", default="10.231.7", help=argparse.SUPPRESS if command is not up_parser
                             else "first three octets of the /24 (default 10.231.7)")
    arguments = parser.parse_args()
    try:
        if arguments.command == "up":
            up(arguments)
        elif arguments.command == "set":
            set_links(arguments)
        elif arguments.command == "status":
            status(arguments)
        elif arguments.command == "check":
            probe()
        else:
            check_machine()
            down(arguments.name)
    except Refused as refusal:
        print(f"netns-cluster: {refusal}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
