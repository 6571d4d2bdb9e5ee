"""Run a trusted client (a load generator) in a sandboxed command's network namespace.

    python -I -S netns_join.py HOST_PID argv...

A service served by a sandboxed command listens on the sandbox's own loopback, which is not the
host's; its probe reaches it by running the client here. Only the network namespace is joined:
the client keeps the host's files and processes (it is fixledger's own tool, not the revision's
code), and the service still sees nothing but its own loopback.

A root worker joins directly. An unprivileged one owns the user namespace bwrap created for the
sandbox (the one owning its network namespace), so it first enters that, where it holds
CAP_SYS_ADMIN, then the network namespace. Standard library only: ``os.setns`` is Python 3.12.
"""

import ctypes
import fcntl
import os
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace owning a namespace


def _setns(libc, fd: int, kind: int) -> None:
    if libc.setns(fd, kind) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def main() -> int:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: netns_join.py HOST_PID argv...\n")
        return 2
    pid, argv = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(libc, net, CLONE_NEWNET)
    except PermissionError:
        owner = fcntl.ioctl(net, NS_GET_USERNS)
        _setns(libc, owner, CLONE_NEWUSER)
        _setns(libc, net, CLONE_NEWNET)
    os.execvp(argv[0], argv)  # noqa: S606 - the probe's own client, never a profile's command
    return 127


if __name__ == "__main__":
    sys.exit(main())
