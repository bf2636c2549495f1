"""Former names kept for one release: a module's ``__getattr__`` that answers an old name with
the object of its new one and a DeprecationWarning naming the new one."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable


def renamed(module: str, names: dict[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of ``module`` for ``names`` (old name → new name in that module):

        __getattr__ = renamed(__name__, {"Result": "CalculationResult"})
    """

    def __getattr__(name: str):
        if name in names:
            new = names[name]
            warnings.warn(f"{module}.{name} is now {module}.{new}", DeprecationWarning,
                          stacklevel=2)
            return getattr(sys.modules[module], new)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
