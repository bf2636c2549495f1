"""The CLI's output layer: show() prints the --json object or calls the command's renderer,
and the renderers print fields the results carry (no numbers computed in the CLI)."""

import io
import json

import pytest

from tealign import units
from tealign.api import Result
from tealign.cli import _common, bench


@pytest.fixture
def stdout(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(_common, "_stdout", [buf])
    monkeypatch.setenv("COLUMNS", "200")
    return buf


def test_show_prints_the_json_object_or_renders(stdout):
    res = Result("fit", {"a": float("nan"), "n": 2})
    seen = []
    _common.show(res, True, seen.append)
    assert json.loads(stdout.getvalue()) == {"a": None, "n": 2} and seen == []
    printed = stdout.getvalue()
    _common.show(res, False, seen.append)
    assert seen == [res] and stdout.getvalue() == printed


def test_bench_cross_table_takes_the_kind_titles_from_the_result(stdout):
    by_kind = {"reaction": {"n": 2, "mae_eV": 0.125, "rmse_eV": 0.2, "max_abs_eV": 0.3},
               "adsorption": {"n": 0},
               "lattice": {"n": 1, "mae_eV": 0.5, "rmse_eV": 0.5, "max_abs_eV": 0.5}}
    res = Result("bench_cross", {}, details={"skipped": [], "by_kind": by_kind, "n": 3,
                                             "mae_eV": 0.25, "rmse_eV": 0.3,
                                             "max_abs_eV": 0.5},
                 kind_titles={"reaction": "Reactions X", "adsorption": "Adsorption Y",
                              "lattice": "Lattice Z"})
    bench._render_cross(res, "xtb")
    text = stdout.getvalue()
    assert "Reactions X" in text and "Lattice Z" in text and "Adsorption Y" not in text
    assert text.index("Reactions X") < text.index("Lattice Z") and "0.125" in text


def test_compute_atoms_prints_the_results_hartree(tmp_path, run_cli):
    out = tmp_path / "atoms.json"
    args = ("compute", "atoms", "--elements", "H", "--method", "xtb:gfn2", "-o", out)
    code, text, _ = run_cli(*args, "--json")
    assert code == 0
    e = json.loads(text)["energies"]["H"]
    code, text, err = run_cli(*args)
    assert code == 0 and f"{e / units.HARTREE_TO_EV:.8f}" in text and f"{e:.6f}" in text
    assert "(0 computed, 1 from the store)" in err


def test_list_commands_print_a_row_per_table_and_dataset(run_cli, monkeypatch):
    from tealign import api

    monkeypatch.setenv("COLUMNS", "300")
    for args, names in ((("e0", "list"), [t["name"] for t in api.e0_tables().tables]),
                        (("data", "list"), [d["name"] for d in api.datasets().datasets])):
        code, text, _ = run_cli(*args)
        first_cells = [line.split()[1] for line in text.splitlines()
                       if line.startswith("│") and line.split()[1] != "│"]
        assert code == 0 and first_cells == names
        code, text, _ = run_cli(*args, "--json")
        assert code == 0 and [r["name"] for r in next(iter(json.loads(text).values()))] == names


@pytest.mark.parametrize("depth", [1, 12])
def test_paths_and_commands_never_wrap_off_a_terminal(tmp_path, run_cli, monkeypatch, depth):
    """Off a terminal, a printed path or command is one line whatever its length (rich's
    80-column wrapping once split paths mid-word and broke a test on a longer tmp path)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    d = tmp_path.joinpath(*[f"a_rather_long_directory_name_{k}" for k in range(depth)])
    d.mkdir(parents=True)
    out = d / "atoms.json"
    code, _, err = run_cli("compute", "atoms", "--elements", "H", "--method", "xtb:gfn2",
                           "-o", out)
    assert code == 0
    lines = [ln for ln in err.splitlines() if "from the store" in ln or "computed" in ln]
    assert lines and any(str(out) in ln for ln in lines), err
