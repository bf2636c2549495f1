"""docs/architecture.md §6.1-6.2: setup errors stop with one line naming file/frame/field
and exit code 2; frame errors are rejected, counted, written to a rejects file, and the rest
goes on."""

import json
import sys

import numpy as np
import pytest
from conftest import random_frames

from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("tealign: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def good_xyz(tmp_path):
    p = tmp_path / "good.xyz"
    write_extxyz(p, [FrameBatch.from_atoms(random_frames(4, periodic_every=0))])
    return p


def _case(tmp_path, good_xyz, name):
    """Build bad input ``name``; return (cli args, expected message fragment)."""
    if name == "missing file":
        return ["info", tmp_path / "nope.xyz"], "nope.xyz: cannot open file: No such file"
    if name == "unknown format":
        (tmp_path / "data.csv").write_text("a,b\n1,2\n")
        return ["info", tmp_path / "data.csv"], "unknown dataset format"
    if name == "not extxyz":
        (tmp_path / "x.xyz").write_text("hello world\nfoo\n")
        return ["info", tmp_path / "x.xyz"], "frame 0: not an extxyz file"
    if name == "binary":
        (tmp_path / "b.xyz").write_bytes(b"3\x00\x01\x02" * 10)
        return ["info", tmp_path / "b.xyz"], "binary content"
    if name == "foreign hdf5":
        import h5py

        with h5py.File(tmp_path / "o.h5", "w") as f:
            f["x"] = np.arange(3)
        return ["info", tmp_path / "o.h5"], "neither MACE"
    if name == "corrupt hdf5":
        (tmp_path / "c.h5").write_bytes(b"not hdf5 at all")
        return ["info", tmp_path / "c.h5"], "cannot open as HDF5"
    if name == "truncated json":
        (tmp_path / "m.json").write_text('{"mp-1": {"a": {"structure": ')
        return ["info", tmp_path / "m.json"], "not valid JSON"
    if name == "unknown table":
        return ["e0", "show", "no-such-table"], "no built-in isolated-atom table"
    if name == "nan in table":
        (tmp_path / "t.json").write_text('{"units": "eV", "energies": {"H": NaN}}')
        return ["e0", "show", tmp_path / "t.json"], "field 'energies.H': energy is NaN"
    if name == "bad element in table":
        (tmp_path / "t.json").write_text('{"units": "eV", "energies": {"Xx": -1}}')
        return ["e0", "show", tmp_path / "t.json"], "field 'energies.Xx'"
    if name == "table lacks element":
        return (["convert", good_xyz, "-o", tmp_path / "out", "--e0", "b3lyp-6-31g2dfp"],
                "has no energy for it")
    if name == "key no frame has":
        return (["info", good_xyz, "--energy-key", "energy_pbe"],
                "field 'energy_pbe': no frame has the energy key")
    if name == "strict frame error":
        text = good_xyz.read_text().rsplit("\n", 3)[0]  # cut the last frame short
        (tmp_path / "t.xyz").write_text(text)
        return (["convert", tmp_path / "t.xyz", "-o", tmp_path / "o.xyz", "--strict"],
                "frame 3: field 'atoms': truncated frame")
    if name == "bad qm9 spec":
        return ["info", "qm9:lots"], "qm9:N needs an integer"
    raise AssertionError(name)


CASES = ["missing file", "unknown format", "not extxyz", "binary", "foreign hdf5",
         "corrupt hdf5", "truncated json", "unknown table", "nan in table",
         "bad element in table", "table lacks element", "key no frame has",
         "strict frame error", "bad qm9 spec"]


@pytest.mark.parametrize("name", CASES)
def test_setup_errors_one_line_exit_2(tmp_path, good_xyz, run_cli, name):
    args, fragment = _case(tmp_path, good_xyz, name)
    code, stdout, stderr = run_cli(*args)
    assert code == 2
    line = _one_error_line(stderr)
    assert fragment in line, line
    assert stdout.strip() == ""


def test_setup_error_writes_nothing(tmp_path, good_xyz, run_cli):
    out = tmp_path / "out"
    args, _ = _case(tmp_path, good_xyz, "table lacks element")
    assert run_cli(*args)[0] == 2
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary left behind


def test_frame_errors_rejected_and_rest_written(tmp_path, run_cli):
    frames = random_frames(6, periodic_every=0)
    write_extxyz(tmp_path / "in.xyz", [FrameBatch.from_atoms(frames)])
    text = (tmp_path / "in.xyz").read_text()
    blocks, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        n = int(lines[i])
        blocks.append(lines[i : i + n + 2])
        i += n + 2
    blocks[1][2] = "Qq" + blocks[1][2][1:] if blocks[1][2][1] == " " else "Qq" + blocks[1][2][2:]
    blocks[2][1] = blocks[2][1].replace("REF_energy=", "REF_energy=nan #")
    bad = "".join("".join(b) for b in blocks)
    bad = bad[: bad.rfind("\n", 0, len(bad) - 1) - 5]  # truncate the last frame
    (tmp_path / "bad.xyz").write_text(bad)
    code, stdout, stderr = run_cli("convert", tmp_path / "bad.xyz", "-o", tmp_path / "out.xyz",
                                   "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["frames_rejected"] == 3 and result["frames_out"] == 3
    assert result["frames_in"] == 6
    rejects = [json.loads(x) for x in (tmp_path / "out.xyz.rejects.jsonl").read_text().splitlines()]
    by_frame = {r["frame"]: r for r in rejects}
    assert set(by_frame) == {1, 2, 5}
    assert by_frame[1]["field"] == "species" and "Qq" in by_frame[1]["reason"]
    assert by_frame[2]["field"] == "REF_energy" and "NaN" in by_frame[2]["reason"]
    assert "truncated" in by_frame[5]["reason"]
    from tealign.io import read_batch

    kept = read_batch(tmp_path / "out.xyz")
    assert kept.n_frames == 3
    assert kept.info["mol_id"].tolist() == ["mol 0", "mol 3", "mol 4"]


def test_missing_optional_package_is_one_line_naming_the_extra(tmp_path, good_xyz, run_cli,
                                                               monkeypatch):
    """MACE HDF5 output without mace-torch installed: exit 2 and the pip command, no
    traceback (None in sys.modules makes the import fail as if the package were absent)."""
    monkeypatch.setitem(sys.modules, "mace.data.neighborhood", None)
    code, _, stderr = run_cli("convert", good_xyz, "-o", tmp_path / "out")
    assert code == 2
    # the last line (mace's own import warnings may come first, when it is installed)
    assert stderr.strip().splitlines()[-1] == (
        "tealign: error: field 'mace': this needs the optional package 'mace', which is not "
        "installed: pip install 'tealign[mace]'") and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()
