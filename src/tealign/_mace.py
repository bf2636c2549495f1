"""Importing mace-torch and loading MACE model files without the noise they print.

Two messages appeared on every model load, neither about the user's run:

- ``mace`` sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` when imported, and every
  ``torch.load`` that does not pass ``weights_only`` then warns (e3nn loads its constants
  that way on import; mace-torch's calculator loads model files that way). tealign loads
  model files itself with ``weights_only=False`` passed explicitly (a MACE model file is a
  pickled module: load only files you trust) and hands the module to ``MACECalculator``
  through ``models=``, so no load of tealign's goes through the environment override; the
  warning of e3nn's import is filtered by its exact text, only while mace is imported.
- ``mace.tools.cg`` *prints* (to stdout, which ``--json`` reserves for the JSON object)
  "cuequivariance or cuequivariance_torch is not available ..." when the optional CUDA
  kernels are not installed. That one line is dropped while mace is imported; anything else
  printed then is passed on.

Other warnings are left alone.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import warnings
from pathlib import Path

from tealign.errors import SetupError, missing_extra

CUEQ_NOTICE = "cuequivariance or cuequivariance_torch is not available"
WEIGHTS_ONLY_WARNING = r"Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected"

_imported = False


@contextlib.contextmanager
def quiet_import():
    """Within: the weights-only override warning and the cuequivariance notice are dropped
    (only those two; other warnings and printed lines pass)."""
    buf = io.StringIO()
    real = sys.stdout
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=WEIGHTS_ONLY_WARNING,
                                    category=UserWarning)
            with contextlib.redirect_stdout(buf):
                yield
    finally:
        kept = [line for line in buf.getvalue().splitlines(keepends=True)
                if not line.startswith(CUEQ_NOTICE)]
        if kept:
            real.write("".join(kept))


def import_mace() -> None:
    """Import mace-torch (and e3nn) once, quietly; SetupError when it is not installed."""
    global _imported
    if _imported:
        return
    try:
        with quiet_import():
            # mace first: it sets the override that lets e3nn load its constants
            importlib.import_module("mace")
            for name in ("e3nn.o3", "mace.modules", "mace.calculators"):
                importlib.import_module(name)
    except ImportError as exc:
        missing = missing_extra(exc) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None:  # the line every optional package gets (errors.EXTRAS)
            raise missing from None
        raise SetupError(f"mace-torch is not installed ({exc}); pip install "
                         "'tealign[mace]'", field="model") from None
    _imported = True


def load_model(path: str | Path, device: str = "cpu"):
    """A MACE model file as a torch module (``weights_only=False``, explicitly: a model
    file is a pickled module, so load only files you trust)."""
    import_mace()
    import torch

    p = Path(path)
    if not p.exists():
        raise SetupError("no such model file", file=str(p))
    try:
        with quiet_import():
            return torch.load(p, map_location=device, weights_only=False)
    except Exception as exc:
        raise SetupError(f"cannot load as a MACE model: {type(exc).__name__}: {exc}",
                         file=str(p)) from None


def calculator(path: str | Path, device: str = "cpu", default_dtype: str = "float64"):
    """``MACECalculator`` for a model file, loaded by :func:`load_model`."""
    import_mace()
    from mace.calculators import MACECalculator

    model = load_model(path, device=device)
    with quiet_import():
        return MACECalculator(models=[model], device=device, default_dtype=default_dtype)
