"""Exit 0 if the PostgreSQL and Redis named on the command line answer, 1 otherwise."""

import socket
import sys
from urllib.parse import urlsplit


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError as exc:
        print(
            f"{parts.scheme} at {parts.hostname}:{parts.port} unreachable: {exc}", file=sys.stderr
        )
        return False


if __name__ == "__main__":
    sys.exit(0 if all([reachable(url) for url in sys.argv[1:]]) else 1)
