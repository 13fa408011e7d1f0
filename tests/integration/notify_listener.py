#!/usr/bin/python3
"""notify_listener.py: a stand-in for systemd's notification socket (sd_notify(3)).

Binds an AF_UNIX datagram socket (a path, or an abstract name given as @NAME) and appends
one line per datagram to the events file, with the sender's pid from SCM_CREDENTIALS:
    pid=1234 READY=1
    pid=1234 RELOADING=1|MONOTONIC_USEC=123456789
(the datagram's newlines written as '|'). The line "listening" comes first, once the
socket is bound. Runs until SIGTERM.

    notify_listener.py --socket PATH|@NAME --events FILE
"""
import argparse
import os
import signal
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--events", required=True)
    args = ap.parse_args()

    addr = args.socket
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    elif os.path.exists(addr):
        os.unlink(addr)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(addr)
    if not args.socket.startswith("@"):
        # Any user may send, as to systemd's own /run/systemd/notify.
        os.chmod(args.socket, 0o777)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    ucred = struct.calcsize("3i")
    with open(args.events, "a", buffering=1) as ev:
        ev.write("listening\n")
        while True:
            data, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(ucred))
            pid = "?"
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = str(struct.unpack("3i", payload[:ucred])[0])
            text = data.decode("utf-8", "replace").rstrip("\n").replace("\n", "|")
            ev.write("pid=%s %s\n" % (pid, text))


if __name__ == "__main__":
    main()
