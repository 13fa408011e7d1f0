#!/usr/bin/python3
"""socket_activate.py: start a program as systemd's socket activation would (sd_listen_fds(3)).

Binds each address given, without SO_REUSEADDR (so that nobody else can bind it while it
is held, the passed-in sockets included), puts the sockets at descriptors 3, 4, ... (the
--udp ones first, each kind in the order given), sets LISTEN_FDS to their count and LISTEN_PID to its own pid (or to
--pid), and executes the program in its own process, which keeps the pid.

    socket_activate.py [--pid N] --udp 127.0.0.1:PORT --tcp 127.0.0.1:PORT ... -- PROGRAM ARGS...
"""
import argparse
import fcntl
import os
import socket
import sys


def parse_addr(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit("usage: socket_activate.py [--pid N] --udp|--tcp ADDR... -- PROGRAM ARGS...")
    cut = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, default=None)
    ap.add_argument("--udp", action="append", default=[])
    ap.add_argument("--tcp", action="append", default=[])
    args = ap.parse_args(argv[:cut])
    program = argv[cut + 1:]

    socks = []
    for kind, addrs in (("udp", args.udp), ("tcp", args.tcp)):
        for text in addrs:
            family, addr = parse_addr(text)
            s = socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
            if kind == "tcp":
                s.listen(64)
            socks.append(s)

    # Out of the way first, so that putting one in place never overwrites another.
    high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in socks]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    os.environ["LISTEN_FDS"] = str(len(socks))
    os.environ["LISTEN_PID"] = str(args.pid if args.pid is not None else os.getpid())
    os.environ["LISTEN_FDNAMES"] = ":".join("dnsward" for _ in socks)
    os.execv(program[0], program)


if __name__ == "__main__":
    main()
