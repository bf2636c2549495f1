"""Names from configs never become paths outside the output (issue 26, item 1)."""

import pytest
from ase import Atoms

from tealign.errors import SetupError
from tealign.io.atomic import check_safe_name, inside
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch


@pytest.mark.parametrize("name", ["../victim", "/tmp/victim", "a/b", "..", ".", "", "a\\b",
                                  "x" * 101, "with space", ".hidden"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(SetupError, match="not a valid name"):
        check_safe_name(name, file="c.toml", field="source[0].name")


@pytest.mark.parametrize("name", ["organic", "spice-2.0", "MPtrj_v1", "a+b", "x" * 100])
def test_safe_names_pass(name):
    assert check_safe_name(name) == name


def test_inside_refuses_escapes_and_symlinks(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    assert inside(root, "a", "b") == root / "a" / "b"
    for parts in (("..", "victim"), ("/etc",), ("a", "..", "..", "x")):
        with pytest.raises(SetupError, match="outside the output"):
            inside(root, *parts)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(SetupError, match="outside the output"):
        inside(root, "link", "victim")


@pytest.mark.parametrize("absolute", [False, True])
def test_per_source_name_cannot_reach_outside(tmp_path, run_cli, absolute):
    """A source named ``../victim`` (or an absolute path) whose frames are all rejected once
    deleted the user's ``victim/``; now the config is refused before anything is written."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")
    # frames with no energy under the key: every one would be rejected
    write_extxyz(tmp_path / "d.extxyz", [FrameBatch.from_atoms([Atoms("H2", [[0, 0, 0],
                                                                      [0, 0, 0.74]])])])
    name = str(victim) if absolute else "../victim"
    (tmp_path / "m.toml").write_text(
        f'[target]\ne0 = "vasp-pbe-mp"\n\n[[source]]\nname = "{name}"\npath = "d.extxyz"\n'
        'energy_key = "nope"\nalignment = "target"\n')
    out = tmp_path / "out"
    code, _, err = run_cli("merge", tmp_path / "m.toml", "-o", out, "--per-source")
    assert code == 2 and "source[0].name" in err and "not a valid name" in err
    assert (victim / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
    assert not out.exists()
