"""Never destroy, never crash (issue 26): names from configs never become paths outside the
output; special files at -o are left alone; plots and rejects files of a user are kept;
all-rejected runs exit 1 keeping the previous output; file-system errors are one line;
workers die with their parent."""

import ast
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import requires_mace

from tealign.errors import SetupError
from tealign.io.extxyz import write_extxyz
from tealign.io.outputs import MANIFEST, check_safe_name, inside


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
    deleted the user's ``victim/``; now the config is refused before anything is written.
    The frames carry the energy key (a NaN under it: every frame a reject, not a setup
    error), so without the name check the run would reach the per-source deleting path."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")
    methane(tmp_path / "d.extxyz", 3, energy="nan")
    name = str(victim) if absolute else "../victim"
    (tmp_path / "m.toml").write_text(
        f'[target]\ne0 = "vasp-pbe-mp"\n\n[[source]]\nname = "{name}"\npath = "d.extxyz"\n'
        'energy_key = "energy"\nalignment = "target"\n')
    out = tmp_path / "out"
    code, _, err = run_cli("merge", tmp_path / "m.toml", "-o", out, "--per-source")
    assert code == 2 and "source[0].name" in err and "not a valid name" in err
    assert (victim / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
    assert not out.exists()


def _tree(root: Path, skip: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` but ``skip`` (relative path → content, mtime in ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and skip not in (p, *p.parents)}


@requires_mace
@pytest.mark.parametrize("with_good", [False, True])
def test_per_source_all_rejected_safe_name_touches_only_the_output(tmp_path, run_cli,
                                                                   with_good, monkeypatch):
    """A safe source name whose frames are all rejected under ``--per-source``: the removal
    of its per-source output stays inside ``-o``; a user's sibling ``victim/`` (the source's
    own name) is intact. Alone it is an all-rejected run (exit 1, nothing written); next to
    a good source the run writes the good one only (exit 0)."""
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")
    (victim / "merged.extxyz").write_text("user's file")
    methane(tmp_path / "bad.extxyz", 3, energy="nan")
    methane(tmp_path / "good.extxyz", 2)
    sources = [("good", "good.extxyz")] if with_good else []
    sources.append(("victim", "bad.extxyz"))
    (tmp_path / "m.toml").write_text('[target]\ne0 = "vasp-pbe-mp"\n' + "".join(
        f'\n[[source]]\nname = "{n}"\npath = "{p}"\nenergy_key = "energy"\n'
        'alignment = "target"\n' for n, p in sources))
    out = tmp_path / "out"
    before = _tree(tmp_path, out)
    code, _, err = run_cli("merge", "m.toml", "-o", "out", "--per-source")
    after = _tree(tmp_path, out)
    sidecar = ".out" + MANIFEST  # tealign's documented manifest beside its output
    assert {k: v for k, v in after.items() if k != sidecar} == before
    if with_good:
        assert code == 0
        assert (out / "good" / "merged.extxyz").is_file() and not (out / "victim").exists()
    else:
        assert code == 1 and "all 3 frames were rejected" in err
        assert not out.exists() and sidecar not in after


# ------------------------------------------------------------------ shared inputs (tiny)

SRC = Path(__file__).resolve().parents[1] / "src"
HEAD = 'Properties=species:S:1:pos:R:3:forces:R:3 energy={e} pbc="F F F"\n'
ATOMS = ("C 0.0 0.0 0.0 0.1 0.0 0.0\nH 0.63 0.63 0.63 0.0 0.1 0.0\n"
         "H -0.63 -0.63 0.63 0.0 0.0 0.1\nH -0.63 0.63 -0.63 0.1 0.1 0.0\n"
         "H 0.63 -0.63 -0.63 0.0 0.1 0.1\n")


def methane(path: Path, n: int, energy: str = "-24.1") -> Path:
    """``n`` methane frames (extxyz, keys ``energy``/``forces``; ``energy="nan"`` makes
    every frame a reject)."""
    path.write_text(("5\n" + HEAD.format(e=energy) + ATOMS) * n)
    return path


def merge_toml(tmp: Path, data: Path, name: str = "m.toml", extra: str = "") -> Path:
    cfg = tmp / name
    cfg.write_text(f'[target]\ne0 = "vasp-pbe-mp"\n{extra}\n[[source]]\nname = "s"\n'
                   f'path = "{data}"\nenergy_key = "energy"\nalignment = "target"\n')
    return cfg


@pytest.fixture(scope="module")
def alignment(tmp_path_factory) -> Path:
    """A fitted alignment (a = 0.91, wB97M → PBE), fitted once for this module."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_alignment import synthetic

    from tealign import api
    from tealign.methods import load_table

    d = tmp_path_factory.mktemp("alignment")
    wb, pbe = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
    write_extxyz(d / "calib.extxyz", [synthetic(40, a=0.91, noise=0.1, seed=3, src=wb,
                                                tgt=pbe, src_key="e_wb", tgt_key="e_pbe")])
    api.fit(str(d / "calib.extxyz"), "e_wb", "e_pbe", "wb97m-d3bj-def2-tzvppd",
            "vasp-pbe-mp", d / "a.json", bootstrap=5)
    return d / "a.json"


def _one_line_error(code: int, err: str, want: int = 2) -> str:
    lines = [x for x in err.splitlines() if x.startswith("tealign: error:")]
    assert code == want, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ item 2: outputs
def _special(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / "out.extxyz"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("a device node needs root (mknod)")
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    elif kind == "link-to-dir":
        (tmp_path / "userdir").mkdir()
        (tmp_path / "userdir" / "mine.txt").write_text("mine")
        p.symlink_to(tmp_path / "userdir")
    elif kind == "link-to-stdout":
        p.symlink_to("/dev/stdout")
    return p


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "link-to-dir",
                                  "link-to-stdout"])
@pytest.mark.parametrize("command", ["convert", "merge"])
def test_special_outputs_are_refused_and_left_alone(tmp_path, run_cli, kind, command):
    """-o onto a FIFO, socket, device node or symbolic link: one line, exit 2, the node
    exactly as it was (align -o /dev/null once turned /dev/null into a regular file)."""
    data = methane(tmp_path / "d.extxyz", 4)
    out = _special(tmp_path, kind)
    before = os.lstat(out)
    args = (("convert", data, "-o", out) if command == "convert"
            else ("merge", merge_toml(tmp_path, data), "-o", out))
    line = _one_line_error(*run_cli(*args)[::2])
    assert "output path is" in line and "--output" in line
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    if kind == "link-to-dir":
        assert os.listdir(tmp_path / "userdir") == ["mine.txt"]
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_wrong_kind_is_refused_before_the_work(tmp_path, run_cli, monkeypatch):
    """merge/convert-to-shards -o an existing file, and align -o an existing directory,
    are refused before anything is read (once only after the whole run)."""
    import tealign.io.convert
    import tealign.merge

    def never(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(tealign.merge, "run_merge", never)
    monkeypatch.setattr(tealign.io.convert, "convert_file", never)
    data = methane(tmp_path / "d.extxyz", 4)
    (tmp_path / "afile").write_text("mine")
    line = _one_line_error(*run_cli("merge", merge_toml(tmp_path, data), "-o",
                                    tmp_path / "afile")[::2])
    assert "existing file" in line
    line = _one_line_error(*run_cli("convert", data, "-o", tmp_path / "afile",
                                    "--to", "mace-h5")[::2])
    assert "existing file" in line
    assert (tmp_path / "afile").read_text() == "mine"


def test_long_output_names_fit_or_are_refused_in_one_line(tmp_path, run_cli):
    """A 252-byte name once failed with an ENAMETOOLONG traceback (the temporary is longer
    than the name); now it is refused before the work, and the longest name allowed works."""
    from tealign.io.outputs import NAME_ROOM, name_max

    data = methane(tmp_path / "d.extxyz", 4)
    line = _one_line_error(*run_cli("convert", data, "-o", tmp_path / ("n" * 248 + ".xyz"))
                           [::2])
    assert "output name is 252 bytes" in line
    assert sorted(os.listdir(tmp_path)) == ["d.extxyz"]
    longest = "n" * (name_max(tmp_path) - NAME_ROOM - 4) + ".xyz"
    code, _, err = run_cli("convert", data, "-o", tmp_path / longest)
    assert code == 0, err
    assert (tmp_path / longest).stat().st_size > 0


FIT = ("--source-key", "e_wb", "--target-key", "e_pbe", "--source-e0",
       "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp", "--bootstrap", "5")


def test_plots_never_replace_a_users_file(tmp_path, run_cli, alignment):
    """fit --plot DIR once overwrote the user's DIR/parity.png (non-atomically), and
    --plot FILE failed with a traceback after alignment.json was written."""
    calib = alignment.parent / "calib.extxyz"
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "parity.png").write_bytes(b"my own figure")
    line = _one_line_error(*run_cli("fit", calib, *FIT, "-o", tmp_path / "a.json",
                                    "--plot", plots)[::2])
    assert "parity.png" in line and "not write" in line
    assert (plots / "parity.png").read_bytes() == b"my own figure"
    assert not (tmp_path / "a.json").exists()
    (tmp_path / "afile").write_text("mine")
    line = _one_line_error(*run_cli("fit", calib, *FIT, "-o", tmp_path / "a.json",
                                    "--plot", tmp_path / "afile")[::2])
    assert "directory for the parity plots" in line
    assert not (tmp_path / "a.json").exists()
    # tealign's own plots are replaced (atomically) on a rerun
    for _ in range(2):
        code, _, err = run_cli("fit", calib, *FIT, "-o", tmp_path / "a.json", "--plot",
                               tmp_path / "mine")
        assert code == 0, err
    assert sorted(os.listdir(tmp_path / "mine")) == ["parity.png", "parity_icea.png",
                                                     "parity_tea.png"]


def test_rejects_file_of_a_user_is_never_deleted(tmp_path, run_cli):
    """A user's OUT.rejects.jsonl was deleted by a run without rejects; tealign's own
    rejects file is still removed when a rerun has none."""
    data = methane(tmp_path / "d.extxyz", 4)
    out = tmp_path / "o.extxyz"
    rej = tmp_path / "o.extxyz.rejects.jsonl"
    rej.write_text("my notes\n")
    line = _one_line_error(*run_cli("convert", data, "-o", out)[::2])
    assert "rejects" in line and rej.read_text() == "my notes\n" and not out.exists()
    rej.unlink()
    bad = tmp_path / "bad.extxyz"
    bad.write_text(data.read_text() + "5\n" + HEAD.format(e="nan") + ATOMS)
    assert run_cli("convert", bad, "-o", out)[0] == 0
    assert json.loads(rej.read_text().splitlines()[0])["frame"] == 4
    assert run_cli("convert", data, "-o", out)[0] == 0
    assert not rej.exists()


# ------------------------------------------------------------------ item 6: all rejected
@requires_mace
def test_all_rejected_runs_exit_1_and_keep_the_previous_output(tmp_path, run_cli,
                                                               alignment):
    """Every frame rejected: exit 1, one line, the previous good output byte for byte
    (once: exit 0 and a 0-byte output that `info` refused)."""
    good = methane(tmp_path / "good.extxyz", 6)
    bad = methane(tmp_path / "bad.extxyz", 6, energy="nan")
    runs = {
        "convert": lambda d, o: ("convert", d, "-o", o),
        "align": lambda d, o: ("align", d, "--alignment", alignment, "-o", o),
        "merge": lambda d, o: ("merge", merge_toml(tmp_path, d, f"{d.stem}.toml"), "-o", o),
    }
    for name, args in runs.items():
        out = tmp_path / (f"{name}.extxyz" if name != "merge" else "merged")
        code, _, err = run_cli(*args(good, out))
        assert code == 0, err
        before = {p: p.read_bytes() for p in ([out] if out.is_file() else out.rglob("*"))
                  if p.is_file()}
        line = _one_line_error(*run_cli(*args(bad, out))[::2], want=1)
        assert "all 6 frames were rejected" in line and "NaN" in line
        assert {p: p.read_bytes() for p in before} == before
        assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
        if name != "merge":  # the reasons are beside the output
            assert len((tmp_path / f"{out.name}.rejects.jsonl").read_text().splitlines()) == 6


# ------------------------------------------------------------------ item 8: merge config
@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_merge_refuses_a_source_listed_twice(tmp_path, run_cli, link):
    """One file under two names (a symbolic or a hard link) would be merged twice."""
    data = methane(tmp_path / "d.extxyz", 6)
    link(data, tmp_path / "link.extxyz")
    cfg = tmp_path / "m.toml"
    cfg.write_text('[target]\ne0 = "vasp-pbe-mp"\n'
                   + "".join(f'[[source]]\nname = "{n}"\npath = "{p}"\nenergy_key = "energy"\n'
                             'alignment = "target"\n'
                             for n, p in (("a", "d.extxyz"), ("b", "link.extxyz"))))
    line = _one_line_error(*run_cli("merge", cfg, "-o", tmp_path / "out")[::2])
    assert "'a' and 'b' are the same data" in line and "source[1].path" in line
    assert not (tmp_path / "out").exists()


@requires_mace
def test_merge_says_when_a_split_column_overrides_fractions(tmp_path, run_cli):
    data = tmp_path / "d.extxyz"
    data.write_text("".join("5\n" + HEAD.format(e=-24.1).replace(
        " pbc", f" split={s} pbc") + ATOMS for s in ["train"] * 4 + ["valid", "test"]))
    cfg = merge_toml(tmp_path, data, extra="seed = 7\nfractions = { train = 0.5, valid = 0.25,"
                     " test = 0.25 }")
    code, _, err = run_cli("merge", cfg, "-o", tmp_path / "out")
    assert code == 0, err
    assert "carries a 'split' column" in err and "[target] fractions and seed do not apply" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["sources"]["s"]["by_split"] == {"train": 4, "valid": 1, "test": 1}
    code, _, err = run_cli("merge", merge_toml(tmp_path, data, "plain.toml"), "-o",
                           tmp_path / "out2")
    assert code == 0 and "split' column" not in err  # nothing to say when nothing is set


# ------------------------------------------------------------------ item 4: file systems
def _cli(args, tmp: Path, limit: int | None = None, timeout: float = 120):
    """Run ``python -m tealign ARGS`` in a subprocess, with ``ulimit -f`` = ``limit`` bytes
    (SIGXFSZ at its default: tealign must ignore it itself). Returns (code, stderr)."""
    def preexec():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(SRC))
    p = subprocess.run([sys.executable, "-m", "tealign", *map(str, args)], cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)
    return p.returncode, p.stderr


def _snapshot(path: Path) -> dict:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {p: p.read_bytes() for p in files}


@requires_mace
def test_file_size_limit_is_one_line_and_keeps_the_previous_output(tmp_path, alignment,
                                                                   run_cli):
    """``ulimit -f``: once a SIGXFSZ kill or an OSError/lmdb.Error traceback; now exit 2,
    one line naming the path, no temporaries, the previous output as it was — for
    convert (extxyz and MACE HDF5), align and merge (LMDB shards). One run is a real
    process (SIGXFSZ at its default: tealign ignores it itself); the others run in this
    process under the same limit (faster)."""
    small = methane(tmp_path / "small.extxyz", 20)
    big = methane(tmp_path / "big.extxyz", 1500)  # ≈ 0.4 MB of output, over the limit
    limit = 200_000
    runs = [("convert", ["convert", "{d}", "-o", "c.extxyz"], "c.extxyz"),
            ("convert-h5", ["convert", "{d}", "-o", "h5", "--to", "mace-h5"], "h5"),
            ("align", ["align", "{d}", "--alignment", alignment, "-o", "a.extxyz"],
             "a.extxyz"),
            ("merge", ["merge", "{d}", "--no-extxyz", "--workers", "2", "-o", "mg"], "mg")]
    merge_toml(tmp_path, small, "small.toml")
    merge_toml(tmp_path, big, "big.toml")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    for name, args, out in runs:
        def fill(d, args=args, name=name, out=out):
            d = f"{d}.toml" if name == "merge" else f"{d}.extxyz"
            return [str(tmp_path / d) if a == "{d}" else
                    str(tmp_path / a) if a == out else a for a in args]

        code, _, err = run_cli(*fill("small"))
        assert code == 0, (name, err)
        before = _snapshot(tmp_path / out)
        if name == "convert":
            code, err = _cli(fill("big"), tmp_path, limit=limit)
        else:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            try:
                code, _, err = run_cli(*fill("big"))
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        line = _one_line_error(code, err)
        assert ("File too large (EFBIG)" in line or "LMDB write failed" in line) \
            and str(out) in line, (name, line)
        assert _snapshot(tmp_path / out) == before, name
        assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p or ".old-" in p], name


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only (chmod 555) "
                    "folder anyway; the full-tmpfs test covers write errors as root")
def test_read_only_output_folder_is_one_line(tmp_path):
    data = methane(tmp_path / "d.extxyz", 4)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = _cli(["convert", data, "-o", ro / "c.extxyz"], tmp_path)
        line = _one_line_error(code, err)
        assert "Permission denied" in line and "ro" in line
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def _tmpfs(tmp_path: Path, options: str):
    """A 64 KiB tmpfs mounted with ``options`` (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    return mnt


def _mounted(tmp_path, options: str):
    mnt = _tmpfs(tmp_path, options)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.fixture
def full_tmpfs(tmp_path):
    yield from _mounted(tmp_path, "size=64k")


@pytest.fixture
def read_only_tmpfs(tmp_path):
    yield from _mounted(tmp_path, "ro,size=64k")


@requires_mace
def test_read_only_file_system_is_one_line(tmp_path, read_only_tmpfs, run_cli):
    """As root (where chmod 555 does not stop writes): a read-only mount, once an EROFS
    traceback, is exit 2 and one line for file and directory outputs."""
    data = methane(tmp_path / "d.extxyz", 4)
    for args in (["convert", data, "-o", read_only_tmpfs / "c.extxyz"],
                 ["convert", data, "-o", read_only_tmpfs / "c.aselmdb"],
                 ["merge", merge_toml(tmp_path, data), "-o", read_only_tmpfs / "mg"]):
        line = _one_line_error(*run_cli(*args)[::2])
        assert "Read-only file system (EROFS)" in line and str(read_only_tmpfs) in line


def test_plots_on_a_full_disk_keep_the_previous_alignment(tmp_path, full_tmpfs, run_cli,
                                                          alignment):
    """fit --plot on a full disk said "nothing written" but had replaced the alignment
    (written before the plots) and left an empty plots folder (found by the audit)."""
    calib = alignment.parent / "calib.extxyz"
    out = full_tmpfs / "f.json"
    out.write_text("PREV\n")
    code, _, err = run_cli("fit", calib, *FIT, "-o", out, "--plot", full_tmpfs / "plots")
    line = _one_line_error(code, err)
    assert "No space left on device" in line
    assert out.read_text() == "PREV\n" and os.listdir(full_tmpfs) == ["f.json"]


@requires_mace
def test_full_disk_is_one_line_no_crash(tmp_path, full_tmpfs, run_cli):
    """A full 64 KiB tmpfs: convert to MACE HDF5 once died of a segmentation fault (HDF5
    writing to disk) and merge's LMDB writer of a bus error (its lock file is mapped into
    memory); now each is exit 2 and one line, nothing left on the file system. (Run in
    this process for speed: a crash would end the test session.)"""
    data = methane(tmp_path / "d.extxyz", 600)
    cfg = merge_toml(tmp_path, data)
    for args in (["convert", data, "-o", full_tmpfs / "h5", "--to", "mace-h5"],
                 ["convert", data, "-o", full_tmpfs / "c.extxyz"],
                 ["merge", cfg, "--no-extxyz", "--workers", "2", "-o", full_tmpfs / "mg"],
                 ["merge", cfg, "-o", full_tmpfs / "mg"]):
        code, _, err = run_cli(*args)
        line = _one_line_error(code, err)
        assert "No space left on device" in line, line
        assert os.listdir(full_tmpfs) == []


# ------------------------------------------------------------------ item 3: processes
def _kill_parent_when_workers_run(args, tmp: Path) -> list[int]:
    """Start ``tealign ARGS``; once it has two child processes, SIGKILL it; returns the
    children still alive 5 s later."""
    from tealign.workers import children

    env = dict(os.environ, PYTHONPATH=str(SRC))
    p = subprocess.Popen([sys.executable, "-m", "tealign", *map(str, args)], cwd=tmp,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: list[int] = []
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60 and p.poll() is None and len(kids) < 2:
            time.sleep(0.05)
            kids = children(p.pid)
        assert p.poll() is None and len(kids) >= 2, "the workers never ran"
    finally:
        p.kill()
        p.wait()
    t0 = time.monotonic()
    alive = kids
    while alive and time.monotonic() - t0 < 5:
        time.sleep(0.1)
        alive = [k for k in kids if _alive(k)]
    for k in alive:  # do not leave them behind if the test fails
        os.kill(k, signal.SIGKILL)
    return alive


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text.rsplit(")", 1)[1].split()[0] != "Z"


@requires_mace
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_workers_die_with_their_parent(tmp_path, alignment):
    """kill -9 of merge (2 of 5 times its two workers lived on, > 40 s) and of align with
    --workers 2 (parallel byte ranges): no worker outlives the parent by 5 s."""
    data = methane(tmp_path / "d.extxyz", 60_000)  # 17 MB: align reads it in ranges
    cfg = merge_toml(tmp_path, data)
    assert _kill_parent_when_workers_run(["merge", cfg, "--workers", "2", "-o", "mg"],
                                         tmp_path) == []
    assert _kill_parent_when_workers_run(["align", data, "--alignment", alignment,
                                          "--workers", "2", "-o", "a.extxyz"],
                                         tmp_path) == []


# ------------------------------------------------------------------ item 1: every writer
ALLOWED_DELETERS = {"io/outputs.py"}


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            yield node, name


def test_nothing_is_deleted_but_through_the_proven_helper():
    """rmtree/unlink/remove/rmdir appear only in io/outputs.py, whose remove_inside proves
    the path lies inside the folder given; every other module deletes through it."""
    offenders = []
    for path in sorted((SRC / "tealign").rglob("*.py")):
        rel = str(path.relative_to(SRC / "tealign"))
        if rel in ALLOWED_DELETERS:
            continue
        for node, name in _calls(ast.parse(path.read_text())):
            if name in ("rmtree", "unlink", "remove", "rmdir", "removedirs") and not (
                    name == "remove" and isinstance(node.func, ast.Attribute)
                    and getattr(node.func.value, "id", "") not in ("os", "shutil")):
                offenders.append(f"{rel}:{node.lineno} {name}")
    assert offenders == []


def test_remove_inside_refuses_outside(tmp_path):
    from tealign.io.outputs import remove_inside

    root = tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("mine")
    (root / "link").symlink_to(victim)
    for target in (victim, root / ".." / "victim", root / "link" / "f", root):
        with pytest.raises(SetupError, match="outside"):
            remove_inside(root, target)
    remove_inside(root, root / "link")  # the link itself, not what it points to
    assert (victim / "f").read_text() == "mine" and not (root / "link").exists()
    remove_inside(root, root / "sub")
    assert not (root / "sub").exists()
