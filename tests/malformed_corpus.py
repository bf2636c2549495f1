"""A corpus of malformed and tricky inputs for every command that reads user files (issue 14).

``build(workdir)`` writes the inputs and returns a list of :class:`Case`; ``check(case, run)``
runs one through the CLI and returns a list of problems (empty = the case passes). Run it as
a script to see the whole corpus at once::

    python tests/malformed_corpus.py [WORKDIR]

It prints one line per case and the counts of tracebacks, silent losses and wrong results.
``tests/test_malformed_corpus.py`` runs every case under pytest.

What a case checks:
- ``setup``: exit code 2, exactly one ``tealign: error:`` line on stderr naming the file (and
  the frame and field where there is one), nothing on stdout, no output written, every file
  that existed before untouched, no traceback.
- ``frames``: exit code 0; ``frames_in`` is the number of frames in the file, the frames named
  in ``rejected`` are rejected (each rejects line names file, frame, field), every other frame
  is written with its values, no traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

N_FRAMES = 12
BAD = 5  # the frame that gets broken


@dataclass
class Case:
    name: str
    args: list
    kind: str  # "setup" or "frames"
    fragments: tuple = ()  # substrings the error line (setup) must hold
    rejected: dict = field(default_factory=dict)  # frame -> field (frames)
    frames_in: int = N_FRAMES
    output: Path | None = None
    protect: tuple = ()  # paths that must be byte-identical afterwards
    good_ids: tuple | None = None  # mol_ids that must be written (default: all not rejected)


# ----------------------------------------------------------------------------- building
def _frame_text(i: int, rng, forces_cols: int = 3, extra: str = "") -> list[str]:
    n = 3 + i % 3
    sym = ["C", "H", "O", "N", "H"][:n]
    head = (f'Properties=species:S:1:pos:R:3:forces:R:{forces_cols} energy={-100.0 - i:.6f} '
            f'mol_id=m{i:03d} pbc="F F F"{extra}')
    rows = []
    for s in sym:
        pos = rng.normal(size=3)
        frc = rng.normal(size=forces_cols)
        rows.append(f"{s} " + " ".join(f"{x:.8f}" for x in (*pos, *frc)))
    return [str(n), head, *rows]


def _frames(seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [_frame_text(i, rng) for i in range(N_FRAMES)]


def _join(frames) -> str:
    return "".join("\n".join(f) + "\n" for f in frames)


def _write(path: Path, frames) -> Path:
    path.write_text(_join(frames))
    return path


def _alignment(work: Path) -> Path:
    """A real alignment (fitted in-process on synthetic data, wb97m table → PBE table)."""
    p = work / "al.json"
    if p.exists():
        return p
    from tealign.align import TotalEnergyAlignment
    from tealign.io.frames import FrameBatch, FrameRecord
    from tealign.methods import load_table

    src, tgt = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
    rng = np.random.default_rng(3)
    recs = []
    for i in range(30):
        numbers = np.array([6] * int(rng.integers(1, 5)) + [1] * int(rng.integers(2, 9)) + [8])
        x = 4.0 * len(numbers) * rng.uniform(0.8, 1.2)
        y = 0.93 * x + rng.normal() * 0.05
        e_src = sum(src.energy(s) for s in ("C", "H", "O") for z in numbers
                    if z == {"C": 6, "H": 1, "O": 8}[s]) - x
        e_tgt = sum(tgt.energy(s) for s in ("C", "H", "O") for z in numbers
                    if z == {"C": 6, "H": 1, "O": 8}[s]) - y
        recs.append(FrameRecord(numbers=numbers, positions=rng.normal(size=(len(numbers), 3)),
                                info={"e_src": e_src, "e_tgt": e_tgt, "mol_id": f"c{i}"},
                                index=i))
    TotalEnergyAlignment(src, tgt, n_bootstrap=50).fit(
        FrameBatch.from_records(recs), "e_src", "e_tgt").save(p)
    return p


def _calib(work: Path, n: int) -> Path:
    p = work / f"calib{n}.extxyz"
    rng = np.random.default_rng(7)
    lines = []
    for i in range(n):
        lines += ["3", f"Properties=species:S:1:pos:R:3 e_src={-2080.0 - i * 0.3:.6f} "
                       f"e_tgt={-14.0 - i * 0.29:.6f} mol_id=c{i}",
                  *[f"{s} " + " ".join(f"{x:.6f}" for x in rng.normal(size=3))
                    for s in ("O", "H", "H")]]
    p.write_text("\n".join(lines) + "\n")
    return p


def _merge_toml(work: Path, name: str, data: Path, target_extra: str = "") -> Path:
    p = work / f"{name}.toml"
    p.write_text(f'[target]\ne0 = "vasp-pbe-mp"\n{target_extra}\n[[source]]\nname = "s"\n'
                 f'path = "{data.name}"\nenergy_key = "energy"\nforces_key = "forces"\n')
    return p


def build(work: str | Path) -> list[Case]:
    """Write every malformed input into ``work``; return the cases."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    al = _alignment(work)
    good = _write(work / "good.extxyz", _frames())
    cases: list[Case] = []

    def frames_case(name, frames, rejected, frames_in=N_FRAMES, cmd="align", good_ids=None):
        src = _write(work / f"{name}.extxyz", frames)
        out = work / f"{name}.out.extxyz"
        if cmd == "align":
            args = ["align", src, "--alignment", al, "-o", out, "--json", "--workers", "1"]
        elif cmd == "convert":
            args = ["convert", src, "-o", out, "--json"]
        else:
            raise AssertionError(cmd)
        cases.append(Case(name, args, "frames", rejected=rejected, frames_in=frames_in,
                          output=out, good_ids=good_ids, protect=(src,)))

    def setup_case(name, args, fragments, output=None, protect=()):
        cases.append(Case(name, args, "setup", fragments=tuple(fragments), output=output,
                          protect=tuple(protect)))

    def broken(fn):
        f = _frames()
        fn(f)
        return f

    # --- framing: every frame accounted for, the reader resynchronises
    def count_plus2(f):
        f[BAD][0] = str(int(f[BAD][0]) + 2)

    def count_minus2(f):
        f[BAD][0] = str(int(f[BAD][0]) - 2)

    def count_word(f):
        f[BAD][0] = "five"

    def count_negative(f):
        f[BAD][0] = "-3"

    def count_huge(f):
        f[BAD][0] = "999999"

    def count_float(f):
        f[BAD][0] = "4.0"

    def blank_inside(f):
        f[BAD].insert(3, "")

    def extra_row(f):
        f[BAD].append(f[BAD][-1])

    def missing_row(f):
        del f[BAD][-1]

    def count_line_deleted(f):
        del f[BAD][0]

    def comment_deleted(f):
        del f[BAD][1]

    for name, fn in [("count_plus2", count_plus2), ("count_minus2", count_minus2),
                     ("count_word", count_word), ("count_negative", count_negative),
                     ("count_huge", count_huge), ("count_float", count_float),
                     ("blank_line_inside_frame", blank_inside), ("extra_atom_row", extra_row),
                     ("missing_atom_row", missing_row),
                     ("count_line_deleted", count_line_deleted),
                     ("comment_line_deleted", comment_deleted)]:
        # a comment line taken for an atom line: the atoms do not match Properties
        frames_case(name, broken(fn), {BAD: "atoms" if name == "comment_line_deleted"
                                       else "natoms"})

    # blank lines between frames are separators, not errors
    # blank lines between frames: ase.io.read stops at the first one and drops the rest in
    # silence, so a file with more frames after it is refused (issue 27 item 7), naming the line
    f = _frames()
    f[BAD].append("")
    f[BAD].append("   ")
    src = _write(work / "blank_lines_between_frames.extxyz", f)
    line = sum(len(fr) for fr in f[:BAD + 1]) - 1
    out = work / "blank_lines_between_frames.out.extxyz"
    setup_case("blank_lines_between_frames", ["align", src, "--alignment", al, "-o", out],
               ["blank_lines_between_frames.extxyz", f"frame {BAD + 1}", f"line {line}",
                "ase.io.read"], output=out, protect=(src,))
    # trailing blank lines end the file for ASE and tealign alike
    f = _frames()
    f[-1] += ["", "  ", ""]
    frames_case("blank_lines_at_the_end", f, {})

    # truncated last frame
    f = _frames()
    f[-1] = f[-1][:-2]
    frames_case("truncated_last_frame", f, {N_FRAMES - 1: "atoms"})

    # --- values and shapes
    def row_short(f):
        f[BAD][3] = " ".join(f[BAD][3].split()[:-1])

    def row_long(f):
        f[BAD][3] += " 1.0"

    def pos_word(f):
        parts = f[BAD][3].split()
        parts[2] = "abc"
        f[BAD][3] = " ".join(parts)

    def pos_nan(f):
        parts = f[BAD][3].split()
        parts[1] = "nan"
        f[BAD][3] = " ".join(parts)

    def forces_inf(f):
        parts = f[BAD][3].split()
        parts[5] = "inf"
        f[BAD][3] = " ".join(parts)

    def unknown_element(f):
        f[BAD][2] = "Qq" + f[BAD][2][1:]

    def energy_word(f):
        f[BAD][1] = f[BAD][1].replace("energy=", "energy=abc", 1).replace("abc-", "abc", 1)

    def energy_nan(f):
        f[BAD][1] = f[BAD][1].replace("energy=", "energy=nan #", 1)

    def energy_inf(f):
        f[BAD][1] = f[BAD][1].replace("energy=-", "energy=-inf", 1).split(" #")[0]

    def energy_twice(f):
        f[BAD][1] += " energy=-5539.0"

    def stress_4(f):
        f[BAD][1] += ' stress="1 2 3 4"'

    def stress_word(f):
        f[BAD][1] += ' stress="1 2 3 4 5 x"'

    def virials_5(f):
        f[BAD][1] += ' virials="1 2 3 4 5"'

    def lattice_8(f):
        f[BAD][1] += ' Lattice="1 0 0 0 1 0 0 0"'

    def pbc_two(f):
        f[BAD][1] = f[BAD][1].replace('pbc="F F F"', 'pbc="T T"')

    def props_bad_type(f):
        f[BAD][1] = f[BAD][1].replace("forces:R:3", "forces:X:3")

    def props_no_pos(f):
        f[BAD][1] = f[BAD][1].replace("pos:R:3", "xyz:R:3")

    def props_not_triples(f):
        f[BAD][1] = f[BAD][1].replace("forces:R:3", "forces:R")

    def zero_atoms(f):
        f[BAD][:] = ["0", f[BAD][1]]

    def int_overflow(f):
        f[BAD][1] = f[BAD][1].replace("forces:R:3", "forces:R:3:tag:I:1")
        for k in range(2, len(f[BAD])):
            f[BAD][k] += " 99999999999999999999999"
    energy_inf_frames = broken(energy_inf)
    energy_inf_frames[BAD][1] = energy_inf_frames[BAD][1].replace("energy=-inf", "energy=-inf ")

    for name, fn, fld in [
        ("row_too_few_columns", row_short, "atoms"), ("row_too_many_columns", row_long, "atoms"),
        ("position_not_a_number", pos_word, "pos"), ("position_nan", pos_nan, "pos"),
        ("forces_inf", forces_inf, "forces"), ("unknown_element", unknown_element, "species"),
        ("energy_not_a_number", energy_word, "energy"), ("energy_nan", energy_nan, "energy"),
        ("energy_twice", energy_twice, "energy"), ("stress_4_values", stress_4, "stress"),
        ("stress_not_numbers", stress_word, "stress"), ("virials_5_values", virials_5,
                                                         "virials"),
        ("lattice_8_values", lattice_8, "Lattice"), ("pbc_two_values", pbc_two, "pbc"),
        ("properties_bad_type", props_bad_type, "Properties"),
        ("properties_no_pos", props_no_pos, "Properties"),
        ("properties_not_triples", props_not_triples, "Properties"),
        ("zero_atoms", zero_atoms, "natoms"), ("int_beyond_int64", int_overflow, "tag"),
    ]:
        frames_case(name, broken(fn), {BAD: fld})
    frames_case("energy_inf", energy_inf_frames, {BAD: "energy"})

    # one bad value in one frame is one reject, never the run (issue 26)
    def header(extra):
        def fn(f):
            f[BAD][1] += extra
        return fn

    def element_not_in_table(f):
        f[BAD][2] = "Fe" + f[BAD][2][1:]  # the alignment's wB97M table has no Fe

    for name, fn, fld in [
        ("charge_word", header(" charge=abc"), "charge"),
        ("charge_two_numbers", header(' charge="1 2"'), "charge"),
        ("charge_fraction", header(" charge=1.5"), "charge"),
        ("charge_nan", header(" charge=nan"), "charge"),
        ("charged_one_frame", header(" charge=-1"), "charge"),
        ("element_not_in_alignment_table", element_not_in_table, "e0[Fe]"),
    ]:
        frames_case(name, broken(fn), {BAD: fld})

    # forces with 2 columns in one frame
    rng = np.random.default_rng(11)
    f = _frames()
    f[BAD] = _frame_text(BAD, rng, forces_cols=2)
    frames_case("forces_2_columns", f, {BAD: "forces"})
    f = _frames()
    f[BAD] = _frame_text(BAD, rng, forces_cols=2)
    frames_case("forces_2_columns_convert", f, {BAD: "forces"}, cmd="convert")

    # bytes that are not text
    src = work / "nul_in_frame.extxyz"
    text = _join(_frames()).encode()
    cut = text.index(b"m005")
    src.write_bytes(text[:cut] + b"\x00\x00" + text[cut:])
    out = work / "nul_in_frame.out.extxyz"
    cases.append(Case("nul_bytes_in_frame", ["align", src, "--alignment", al, "-o", out,
                                             "--json", "--workers", "1"],
                      "frames", rejected={BAD: "mol_id"}, output=out, protect=(src,)))
    src = work / "latin1.extxyz"
    text = _join(_frames()).encode()
    cut = text.index(b"m005") + 4
    src.write_bytes(text[:cut] + b" note=caf\xe9" + text[cut:])
    out = work / "latin1.out.extxyz"
    cases.append(Case("not_utf8_comment", ["align", src, "--alignment", al, "-o", out,
                                           "--json", "--workers", "1"],
                      "frames", rejected={BAD: "comment"}, output=out, protect=(src,)))

    # info reads the same broken frames without a traceback and counts them
    src = _write(work / "info_energy_word.extxyz", broken(energy_word))
    cases.append(Case("info_energy_not_a_number", ["info", src, "--json"], "frames",
                      rejected={BAD: "energy"}, protect=(src,)))
    src = _write(work / "info_count_plus2.extxyz", broken(count_plus2))
    cases.append(Case("info_count_plus2", ["info", src, "--json"], "frames",
                      rejected={BAD: "natoms"}, protect=(src,)))

    # --- files that cannot be framed at all: setup errors
    (work / "empty.extxyz").write_text("")
    setup_case("empty_file", ["info", work / "empty.extxyz"], ["empty.extxyz", "no frames"])
    (work / "words.extxyz").write_text("hello world\n")
    setup_case("first_line_not_count", ["info", work / "words.extxyz"],
               ["words.extxyz", "frame 0"])
    (work / "fake.extxyz.gz").write_text(_join(_frames()))
    setup_case("gz_not_gzip", ["info", work / "fake.extxyz.gz"], ["fake.extxyz.gz", "gzip"])
    blob = gzip.compress(_join(_frames()).encode())
    (work / "cut.extxyz.gz").write_bytes(blob[: len(blob) // 2])
    out = work / "cut.out.extxyz"
    setup_case("gz_truncated", ["align", work / "cut.extxyz.gz", "--alignment", al, "-o", out],
               ["cut.extxyz.gz", "line", "truncated"], output=out)

    # --- outputs never destroy what tealign did not write
    d = work / "precious_dir"
    d.mkdir(exist_ok=True)
    (d / "precious.txt").write_text("x\n")
    setup_case("align_output_is_directory", ["align", good, "--alignment", al, "-o", d],
               ["precious_dir", "directory"], protect=(d / "precious.txt",))
    setup_case("convert_output_is_directory", ["convert", good, "-o", d, "--to", "extxyz"],
               ["precious_dir", "directory"], protect=(d / "precious.txt",))
    setup_case("convert_mace_output_is_foreign_directory", ["convert", good, "-o", d],
               ["precious_dir", "not written by tealign"], protect=(d / "precious.txt",))
    setup_case("merge_output_is_foreign_directory",
               ["merge", _merge_toml(work, "m_ok", good), "-o", d],
               ["precious_dir", "not written by tealign"], protect=(d / "precious.txt",))
    same = _write(work / "same.extxyz", _frames())
    setup_case("align_output_is_input", ["align", same, "--alignment", al, "-o", same],
               ["same.extxyz", "input"], protect=(same,))
    setup_case("convert_output_is_input", ["convert", same, "-o", same], ["same.extxyz",
                                                                          "input"],
               protect=(same,))
    setup_case("align_output_is_alignment", ["align", same, "--alignment", al, "-o", al],
               ["al.json", "input"], protect=(al, same))
    setup_case("align_output_dot", ["align", same, "--alignment", al, "-o", "."],
               ["directory"], protect=(same,))
    cal = _calib(work, 20)
    cal_out = work / "calib_as_output.extxyz"
    cal_out.write_bytes(cal.read_bytes())
    setup_case("fit_output_is_input",
               ["fit", cal_out, "--source-key", "e_src", "--target-key", "e_tgt", "--source-e0",
                "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp", "-o", cal_out],
               ["calib_as_output.extxyz", "input"], protect=(cal_out,))

    # --- CLI ranges
    fit = ["fit", cal, "--source-key", "e_src", "--target-key", "e_tgt", "--source-e0",
           "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp"]
    for name, extra, frag in [("fit_bootstrap_0", ["--bootstrap", "0"], "--bootstrap"),
                              ("fit_bootstrap_negative", ["--bootstrap", "-5"], "--bootstrap"),
                              ("fit_folds_1", ["--model", "auto", "--folds", "1"], "--folds"),
                              ("fit_unknown_model", ["--model", "linear"], "--model")]:
        out = work / f"{name}.json"
        setup_case(name, [*fit, *extra, "-o", out], [frag], output=out)
    one = _calib(work, 1)
    for model in ("scale", "icea", "scale+elements", "auto"):
        out = work / f"fit_one_{model}.json"
        setup_case(f"fit_one_structure_{model}",
                   ["fit", one, "--source-key", "e_src", "--target-key", "e_tgt",
                    "--source-e0", "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
                    "--model", model, "-o", out], ["calib1.extxyz", "structure"], output=out)
    # forces key that no frame has, while frames carry forces under another key
    out = work / "typo.out.extxyz"
    setup_case("align_forces_key_typo", ["align", good, "--alignment", al, "--forces-key",
                                         "forcse", "-o", out], ["forcse", "forces"], output=out)
    out = work / "typo_e.out.extxyz"
    setup_case("align_energy_key_typo", ["align", good, "--alignment", al, "--energy-key",
                                         "enrgy", "-o", out], ["enrgy"], output=out)

    # --- alignment files
    doc = json.loads(al.read_text())

    def edited(name, fn, fragments):
        d2 = json.loads(json.dumps(doc))
        d2 = fn(d2)
        p = work / f"al_{name}.json"
        p.write_text(d2 if isinstance(d2, str) else json.dumps(d2, indent=1))
        out = work / f"al_{name}.out.extxyz"
        setup_case(f"alignment_{name}", ["align", good, "--alignment", p, "-o", out],
                   [f"al_{name}.json", *fragments], output=out)

    def a_and_no_sha(d):
        d["model"]["a"] = 1.5
        del d["sha256"]
        return d

    def set_a(v):
        def fn(d):
            d["model"]["a"] = v
            return d
        return fn

    def drop(*path):
        def fn(d):
            cur = d
            for k in path[:-1]:
                cur = cur[k]
            del cur[path[-1]]
            return d
        return fn

    def resign(fn):
        """Edit, then stamp a matching sha256: the schema, not the checksum, must refuse it."""
        def inner(d):
            d = fn(d)
            d.pop("sha256", None)
            text = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=True)
            d["sha256"] = hashlib.sha256(text.encode()).hexdigest()
            return d
        return inner

    edited("a_edited_sha_removed", a_and_no_sha, ["sha256", "tealign fit"])
    edited("a_edited", set_a(1.5), ["sha256", "tealign fit"])
    # plausible ranges (issue 26): checked even under a matching checksum
    edited("a_1e308", resign(set_a(1e308)), ["model.a", "0.5 < a < 2"])
    edited("a_10_pow_400", resign(set_a(10**400)), ["model.a"])
    edited("a_3", resign(set_a(3.0)), ["model.a", "0.5 < a < 2"])
    edited("a_0_1", resign(set_a(0.1)), ["model.a", "0.5 < a < 2"])
    edited("offset_1000_eV", resign(lambda d: {**d, "model": {**d["model"],
                                                              "offsets_eV": {"H": 1000.0}}}),
           ["model.offsets_eV.H", "10"])
    edited("sha_wrong", lambda d: {**d, "sha256": "0" * 64}, ["sha256"])
    edited("a_zero", resign(set_a(0.0)), ["model.a"])
    edited("a_negative", resign(set_a(-0.9)), ["model.a"])
    edited("a_nan", resign(set_a(float("nan"))), ["model.a"])
    edited("a_string", resign(set_a("0.93")), ["model.a"])
    edited("no_model", resign(drop("model")), ["model"])
    edited("no_source_table", resign(drop("source_table")), ["source_table"])
    edited("no_target_table", resign(drop("target_table")), ["target_table"])
    edited("offsets_not_numbers", resign(lambda d: {**d, "model": {**d["model"],
                                                                   "offsets_eV": {"H": "x"}}}),
           ["offsets_eV"])
    edited("a_list", lambda d: [d], ["JSON object"])
    edited("not_json", lambda d: "{not json", ["JSON"])
    edited("wrong_format", resign(lambda d: {**d, "format": "other/1"}), ["format"])

    # --- merge configs
    def merge_case(name, target_extra, fragments, source_extra=""):
        p = _merge_toml(work, name, good, target_extra)
        if source_extra:
            p.write_text(p.read_text() + source_extra)
        out = work / f"{name}.out"
        setup_case(name, ["merge", p, "-o", out], [f"{name}.toml", *fragments], output=out)

    merge_case("merge_fractions_sum_1_3", "fractions = { train = 0.8, valid = 0.3, test = 0.2 }",
               ["fractions"])
    merge_case("merge_fractions_negative",
               "fractions = { train = 1.2, valid = -0.1, test = -0.1 }", ["fractions"])
    merge_case("merge_fractions_unknown_split",
               "fractions = { train = 0.8, valid = 0.1, holdout = 0.1 }", ["fractions"])
    merge_case("merge_unknown_target_key", "rmax = 5.0", ["target", "rmax"])
    merge_case("merge_r_max_string", 'r_max = "far"', ["r_max"])
    merge_case("merge_source_path_missing", "", ["path"],
               source_extra='\n[[source]]\nname = "t"\nenergy_key = "energy"\n')
    sub = work / "merge_into_source"
    sub.mkdir(exist_ok=True)
    inner = _write(sub / "inner.extxyz", _frames())
    p = _merge_toml(sub, "m", inner)
    setup_case("merge_output_contains_source", ["merge", p, "-o", sub],
               ["merge_into_source", "input"], protect=(inner, p))

    # --- SPICE with an energy array shorter than its conformations
    import h5py

    sp = work / "spice_short.hdf5"
    with h5py.File(sp, "w") as fh:
        g = fh.create_group("mol")
        g["atomic_numbers"] = np.array([8, 1, 1])
        g["conformations"] = np.random.default_rng(0).normal(size=(4, 3, 3))
        g["dft_total_energy"] = np.array([-76.4, -76.41, -76.39])
        g["smiles"] = np.array([b"[O:1]([H:2])[H:3]"])
    # which energy belongs to which conformation is unknown: the whole group is rejected
    cases.append(Case("spice_energy_shorter_than_conformations", ["info", sp, "--json"],
                      "frames", rejected={k: "mol/dft_total_energy" for k in range(4)},
                      frames_in=4, protect=(sp,)))
    return cases


# ----------------------------------------------------------------------------- checking
def _digest(p: Path) -> str | None:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def check(case: Case, run) -> list[str]:
    """Run ``case`` with ``run(args) -> (code, stdout, stderr, exception)``; list problems."""
    before = {p: _digest(Path(p)) for p in case.protect}
    code, stdout, stderr, exc = run([str(a) for a in case.args])
    problems = []
    if exc is not None and not isinstance(exc, SystemExit):
        problems.append(f"traceback: {type(exc).__name__}: {exc}")
    if "Traceback" in stderr or "Traceback" in stdout:
        problems.append("traceback printed")
    for p, d in before.items():
        if _digest(Path(p)) != d:
            problems.append(f"data loss: {p} changed or vanished")
    if case.kind == "setup":
        if code != 2:
            problems.append(f"exit code {code}, expected 2 (stdout {stdout[:200]!r})")
        lines = [ln for ln in stderr.splitlines() if ln.startswith("tealign: error:")]
        if len(lines) != 1:
            problems.append(f"expected one error line, got {len(lines)}: {stderr[-300:]!r}")
        else:
            for frag in case.fragments:
                if frag not in lines[0]:
                    problems.append(f"error line lacks {frag!r}: {lines[0]}")
        if stdout.strip():
            problems.append(f"stdout not empty: {stdout[:200]!r}")
        if case.output is not None and Path(case.output).exists():
            problems.append(f"output written despite the error: {case.output}")
        return problems
    # frames
    if code != 0:
        return [*problems, f"exit code {code}, expected 0: {stderr[-300:]}"]
    try:
        result = json.loads(stdout)
    except ValueError:
        return [*problems, f"stdout is not strict JSON: {stdout[:200]!r}"]
    n_in = result.get("frames_in", result.get("frames", 0) + result.get("frames_rejected", 0))
    if n_in != case.frames_in:
        problems.append(f"silent loss: frames_in {n_in}, the file has {case.frames_in}")
    if result.get("frames_rejected") != len(case.rejected):
        problems.append(f"frames_rejected {result.get('frames_rejected')}, expected "
                        f"{len(case.rejected)}")
    rejects = []
    if result.get("rejects_file"):
        rejects = [json.loads(x) for x in Path(result["rejects_file"]).read_text().splitlines()]
    elif "rejects" in result:  # info lists its rejects as lines
        rejects = [{"line": x} for x in result["rejects"]]
    for r in rejects:
        if "line" in r:
            continue
        if not (r.get("file") and isinstance(r.get("frame"), int) and r.get("field")
                and r.get("reason")):
            problems.append(f"reject line does not name file/frame/field: {r}")
    got = {r["frame"]: r["field"] for r in rejects if "frame" in r}
    for frame, fld in case.rejected.items():
        if rejects and "line" in rejects[0]:
            if not any(f"frame {frame}" in r["line"] and f"'{fld}'" in r["line"]
                       for r in rejects):
                problems.append(f"frame {frame} not rejected on field {fld}: {rejects}")
        elif got.get(frame) != fld:
            problems.append(f"frame {frame} not rejected on field {fld}: {got}")
    if case.output is not None:
        from tealign.io import read_batch

        try:
            written = read_batch(case.output)
        except Exception as exc:  # noqa: BLE001 - a broken output is a wrong result
            return [*problems, f"written frames unreadable: {type(exc).__name__}: {exc}"]
        ids = sorted(written.info["mol_id"].tolist()) if written.n_frames else []
        want = sorted(case.good_ids) if case.good_ids is not None else sorted(
            f"m{i:03d}" for i in range(case.frames_in) if i not in case.rejected)
        if ids != want:
            problems.append(f"written frames {ids} != expected {want}")
        if result.get("frames_out") != len(want):
            problems.append(f"frames_out {result.get('frames_out')} != {len(want)}")
    return problems


def cli_runner():
    """An in-process runner: (code, stdout, stderr, exception-or-None)."""
    from typer.testing import CliRunner

    from tealign.cli import app

    runner = CliRunner()

    def run(args):
        r = runner.invoke(app, args, catch_exceptions=True)
        return r.exit_code, r.stdout, r.stderr, r.exception

    return run


def main(argv: list[str]) -> int:
    import tempfile

    work = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="tealign-bad-"))
    cases = build(work)
    run = cli_runner()
    counts = {"tracebacks": 0, "silent losses": 0, "wrong results": 0, "passed": 0}
    for case in cases:
        problems = check(case, run)
        if not problems:
            counts["passed"] += 1
        elif any(p.startswith("traceback") for p in problems):
            counts["tracebacks"] += 1
        elif any(p.startswith(("silent loss", "data loss", "written frames")) for p in problems):
            counts["silent losses"] += 1
        else:
            counts["wrong results"] += 1
        print(f"{'ok  ' if not problems else 'FAIL'} {case.name}: "
              + ("; ".join(problems) if problems else case.kind))
    print(f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0 if counts["passed"] == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
