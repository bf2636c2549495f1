"""tealign: Total Energy Alignment of quantum-chemistry datasets for universal MLIPs.

Implements TEA (inner-core energy alignment + atomization-energy correction) from
Shiota et al., arXiv:2412.13088 (MACE-Osaka24), with open reference codes.

The public API (README.md, "Python API"):

- data: :func:`read`, :func:`iread` (``ase.Atoms``, as ``ase.io`` returns them),
  :func:`write` (format from the name), and the fast columnar :func:`read_frames`,
  :func:`iter_frames` (:class:`FrameBatch`) over the format registry
  (:data:`tealign.io.REGISTRY`);
- keys: :class:`Keys` (energy, forces, stress, virials key names), :data:`REF`;
- the estimator: :class:`TotalEnergyAlignment`;
- one function per pipeline verb, each returning a :class:`Result` (``to_json()``, the
  ``--json`` object; ``save(dir)``): :func:`info`, :func:`convert`, :func:`fit`,
  :func:`align_file`, :func:`merge_sources`, :func:`train_model`, :func:`evaluate_model`,
  :func:`bench_reactions`, :func:`bench_lattice`, :func:`bench_eos`, :func:`bench_torsion`,
  :func:`bench_water`, :func:`bench_cross` (one ``bench_NAME`` per entry of
  :data:`tealign.bench.benchmarks.BENCHMARKS`), :func:`compute_atoms`, :func:`compute_calib`,
  :func:`write_report`, :func:`run_demo` (the same functions, under these names and under
  the command names ``api.align``, ``api.merge``, ..., are in :mod:`tealign.api`; the
  top-level names differ from the command names where a subpackage of that name exists:
  ``tealign.align`` is always the subpackage of the estimator — calling it runs
  ``align_file`` with a DeprecationWarning, for one release);
- :mod:`tealign.rundir`: the files of a run directory.

Names are imported on first use, so ``import tealign`` stays light.
"""

from tealign.bench.benchmarks import BENCHMARKS

__version__ = "0.1.0"

_API = {"align_file": "align", "merge_sources": "merge", "train_model": "train",
        "evaluate_model": "evaluate", "write_report": "report", "run_demo": "demo",
        **{verb: verb for verb in (
            "info", "convert", "fit", "compute_atoms", "compute_calib", "Result")},
        **{b.kind: b.kind for b in BENCHMARKS.values()}}
_EXPORTS = {
    "read": ("tealign.io", "read"), "iread": ("tealign.io", "iread"),
    "write": ("tealign.io", "write"), "read_frames": ("tealign.io", "read_frames"),
    "iter_frames": ("tealign.io", "iter_frames"), "FrameBatch": ("tealign.io.frames", "FrameBatch"),
    "Keys": ("tealign.keys", "Keys"), "REF": ("tealign.keys", "REF"),
    "ORIG": ("tealign.keys", "ORIG"),
    "TotalEnergyAlignment": ("tealign.align.estimator", "TotalEnergyAlignment"),
    "SetupError": ("tealign.errors", "SetupError"),
    "FrameError": ("tealign.errors", "FrameError"),
    **{name: ("tealign.api", attr) for name, attr in _API.items()},
}

__all__ = ["__version__", *_EXPORTS]


#: subpackages whose name is also a verb: ``tealign.align`` is always the subpackage (never
#: a function, whatever was imported before); the verbs are ``align_file``, ``train_model``.
_SUBPACKAGES = ("align", "train", "api", "rundir")


def __getattr__(name: str):
    import importlib

    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name.startswith("bench_") and name[len("bench_"):] in BENCHMARKS:  # registered later
        return getattr(importlib.import_module("tealign.api"), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"tealign.{name}")
    raise AttributeError(f"module 'tealign' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
