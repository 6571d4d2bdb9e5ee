"""The reporting package is imported from its folder, as a service would after installing it."""

import sys
from pathlib import Path

REPORTING = Path(__file__).resolve().parents[2] / "reporting"
if str(REPORTING) not in sys.path:
    sys.path.insert(0, str(REPORTING))
