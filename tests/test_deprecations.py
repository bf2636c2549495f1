"""Former names answer for one release with the new object and a DeprecationWarning naming
the new one (issue 29's renames; ``tealign.deprecation.renamed``); importing the modules
themselves warns about nothing."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

RENAMED = [
    ("tealign.compute.backends", "Result", "CalculationResult"),
    ("tealign.compute.backends.base", "Result", "CalculationResult"),
    ("tealign.compute.runner", "Result", "CalculationResult"),
    ("tealign.demo", "run_demo", "run_steps"),
    ("tealign.io.shards", "FORMATS", "SHARD_FORMATS"),
    ("tealign.align.pipeline", "align_file", "transform_file"),
]


@pytest.mark.parametrize("module, old, new", RENAMED)
def test_a_former_name_warns_and_is_the_new_object(module, old, new):
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{module}.{old} is now {module}.{new}"):
        value = getattr(mod, old)
    assert value is getattr(mod, new)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mod.nope  # noqa: B018


def test_the_former_io_atomic_module_is_io_outputs():
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n    import tealign.io.atomic\nexcept DeprecationWarning as w: print(w)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "tealign.io.atomic is now tealign.io.outputs" in proc.stdout
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tealign.io.atomic as atomic
    import tealign.io.outputs as outputs

    assert atomic is outputs


def test_importing_the_renamed_modules_warns_about_nothing():
    mods = ", ".join(m for m, _, _ in RENAMED)
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                           f"import {mods}, tealign.api, tealign.cli"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
