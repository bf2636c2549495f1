"""Deprecated name of :mod:`tealign.io.outputs` (safe outputs: atomic writes, their JSON and
rejects files). "atomic" read as "atoms" in a chemistry package (issue 29); importing this
module warns and gives :mod:`tealign.io.outputs` itself, for one release."""

import sys
import warnings

from tealign.io import outputs

warnings.warn("tealign.io.atomic is now tealign.io.outputs", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = outputs
