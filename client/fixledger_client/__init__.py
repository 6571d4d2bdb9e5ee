"""The `fixledger` command: a client of fixledger's REST API for CI jobs and scripts.

Standard library only, so it installs anywhere Python 3.11 runs, without the server.
"""

__version__ = "0.1.0"
