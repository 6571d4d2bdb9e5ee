"""Modules imported at their first use, not at start-up."""

import importlib
from types import ModuleType


class LazyModule:
    """Stands for the module `name`, importing it when one of its attributes is first read.

    For heavy libraries that a module needs in only some processes: web processes import the
    measurement statistics for their names and rules, workers compute with numpy and scipy.
    """

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        # Only reached for the wrapped module's attributes: _name and _module are set above.
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)
