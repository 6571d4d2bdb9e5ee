"""The web application as it was before the lazy imports: numpy and scipy loaded at start.
The baseline of tests/benchmarks/web_rss.py."""

import numpy  # noqa: F401
import scipy.integrate
import scipy.optimize
import scipy.stats  # noqa: F401

from apps.wsgi import application  # noqa: F401
