"""Total Energy Alignment: ICEA (isolated-atom shifts) + AEC (atomization-energy correction)."""

from tealign.align.estimator import TotalEnergyAlignment
from tealign.align.icea import atom_energy_sums, icea_shift
from tealign.align.models import MODELS, REGISTRY, ScaleElementsModel, ScaleModel, make_model

__all__ = ["MODELS", "REGISTRY", "ScaleElementsModel", "ScaleModel", "TotalEnergyAlignment",
           "atom_energy_sums", "icea_shift", "make_model"]


class _AlignPackage(type(__import__("sys"))):
    """``tealign.align`` is this subpackage (the estimator and its parts); the pipeline verb is
    :func:`tealign.align_file`. Calling the package, ``tealign.align(data, alignment, out)``
    (a guess by analogy with ``tealign.fit``), runs ``align_file`` with a
    DeprecationWarning; it will be a TypeError in the next release."""

    def __call__(self, *args, **kwargs):
        import sys
        import warnings

        # the verb through the parent package's public name, resolved at call time: the
        # library layer never imports the API (tests/test_layers.py)
        align_file = sys.modules["tealign"].align_file
        warnings.warn("tealign.align is the subpackage of the estimator; call "
                      "tealign.align_file(data, alignment, output, ...) to align a dataset",
                      DeprecationWarning, stacklevel=2)
        return align_file(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _AlignPackage
