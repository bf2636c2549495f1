"""The saved form of an alignment (``alignment.json``, format ``tealign-alignment/1``): the
dict of a fitted state, its canonical SHA-256, the schema check, and reading and writing it.
Energies eV, forces eV/Å, stress eV/Å³."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ase.data import atomic_numbers

from tealign import __version__, units
from tealign.align.calibration import finite as _finite
from tealign.align.fitted import FittedAlignment
from tealign.align.models import implausible
from tealign.errors import SetupError
from tealign.io.outputs import write_json
from tealign.methods import IsolatedAtomTable

FORMAT = "tealign-alignment/1"
_HOW_TO_GET_ONE = ("get a valid alignment with `tealign fit CALIB ... -o alignment.json` "
                   "(alignment files are never edited by hand)")


def to_dict(state: FittedAlignment, params: dict) -> dict:
    """The saved form of ``state`` fitted with the estimator settings ``params``."""
    return {
        "format": FORMAT,
        "tealign_version": __version__,
        "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å³",
                  "codata": units.CODATA, "hartree_to_eV": units.HARTREE_TO_EV},
        "source_table": state.source_table.to_json_dict(),
        "target_table": state.target_table.to_json_dict(),
        "model": {"name": state.model, "a": state.a, "offsets_eV": state.offsets,
                  "requested": "chain" if state.model == "chain" else params["model"],
                  "alpha": params["alpha"]},
        "a_ci95": state.a_ci95,
        "metrics": {"n": state.n, "n_rejected": state.n_rejected,
                    "rmse_icea_eV": state.rmse_icea, "rmse_tea_eV": state.rmse_tea,
                    "r2_icea": state.r2_icea, "r2_tea": state.r2_tea,
                    "cv_rmse_eV": state.cv_rmse},
        "calibration": state.calibration,
        "settings": {"n_bootstrap": params["n_bootstrap"], "cv_folds": params["cv_folds"],
                     "random_state": params["random_state"]},
        "formula": "E1 = sum_i E_i[target] - (a * (sum_i E_i[source] - E2) + "
                   "sum_el n_el * offsets[el]); F1 = a F2; stress1 = a stress2",
        **({"chain": state.chain} if state.chain else {}),
    }


def sha256(d: dict) -> str:
    """SHA-256 of the canonical JSON of a saved alignment ``d`` (sorted keys, no spaces)."""
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save(d: dict, path: str | os.PathLike) -> Path:
    """Write ``d`` with its ``sha256`` atomically to ``path``; returns the path."""
    write_json(path, {**d, "sha256": sha256(d)})
    return Path(path)


def from_dict(d: dict, source: str = "<dict>") -> tuple[dict, FittedAlignment]:
    """(the estimator's settings, its fitted state) of a saved alignment, validated by
    :func:`validate_alignment` (the caller checks its ``sha256``: :func:`check_sha256`)."""
    validate_alignment(d, source)
    src = IsolatedAtomTable.from_json_dict(d["source_table"], source=source)
    tgt = IsolatedAtomTable.from_json_dict(d["target_table"], source=source)
    requested = d["model"].get("requested", d["model"]["name"])
    if requested == "chain":  # a composed alignment: the settings a refit would use
        requested = "scale+elements" if d["model"].get("offsets_eV") else "scale"
    params = {"source": src, "target": tgt, "model": requested,
              "alpha": d["model"].get("alpha", 1e-3), **d.get("settings", {})}
    m = d.get("metrics", {})
    state = FittedAlignment(
        a=float(d["model"]["a"]),
        offsets={k: float(v) for k, v in d["model"].get("offsets_eV", {}).items()},
        a_ci95=d.get("a_ci95"), model=d["model"]["name"],
        n=m.get("n"), n_rejected=m.get("n_rejected"),
        rmse_icea=m.get("rmse_icea_eV"), rmse_tea=m.get("rmse_tea_eV"),
        r2_icea=m.get("r2_icea"), r2_tea=m.get("r2_tea"), cv_rmse=m.get("cv_rmse_eV"),
        calibration=d.get("calibration", {}), chain=d.get("chain", []),
        source_table=src, target_table=tgt)
    return params, state


def check_sha256(d: dict, computed: str, source: str = "<dict>") -> None:
    """A saved ``sha256`` that is not the content's (``computed``) is a setup error."""
    if d["sha256"] != computed:
        raise SetupError("alignment file was edited after saving (sha256 mismatch); "
                         + _HOW_TO_GET_ONE, file=source, field="sha256")


def read(path: str | os.PathLike) -> dict:
    """The JSON of an alignment file (unreadable or not JSON: a setup error)."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise SetupError(f"cannot read alignment: {exc.strerror}", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise SetupError(f"not valid JSON (line {exc.lineno}: {exc.msg}); "
                         + _HOW_TO_GET_ONE, file=str(path)) from None
    except UnicodeDecodeError:
        raise SetupError("not a text file; " + _HOW_TO_GET_ONE, file=str(path)) from None


def sha256_file(path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def calibration_record(calibration, source_key: str, target_key: str,
                       split: str | None) -> dict:
    """Where a fit's calibration came from: the file and its SHA-256 (None when not a file),
    the keys and the split."""
    path = calibration if isinstance(calibration, (str, os.PathLike)) else None
    return {"file": str(path) if path is not None else None,
            "sha256": sha256_file(path) if path is not None and Path(path).is_file() else None,
            "source_key": source_key, "target_key": target_key, "split": split}


def _show_number(v) -> str:
    """A value for an error line: huge integers by their size, long text cut short."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**30:
        return f"an integer of {len(str(abs(v)))} digits"
    text = repr(v)
    return text if len(text) <= 30 else text[:27] + "..."


def validate_alignment(d, source: str = "<dict>") -> None:
    """Raise :class:`SetupError` (naming the field) unless ``d`` is a well-formed saved
    alignment: a JSON object of format tealign-alignment/1 with ``model`` {``name``: str,
    ``a``: finite, 0.5 < a < 2, ``offsets_eV``: {element: finite, |c| ≤ 10 eV}} (the
    plausible ranges of :func:`tealign.align.aec.implausible`), ``source_table`` and
    ``target_table`` objects, ``sha256`` (64 hex digits), and, where present, ``a_ci95``
    ([lo, hi] finite or null), ``settings`` (n_bootstrap ≥ 1, cv_folds ≥ 2,
    random_state int), ``metrics``/``calibration``/``units`` objects and ``chain`` a list."""
    def bad(field, why):
        return SetupError(f"{why}; " + _HOW_TO_GET_ONE, file=source, field=field)

    if not isinstance(d, dict):
        raise bad(None, f"an alignment is a JSON object, not a {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise bad("format", f"not a tealign alignment (format {d.get('format')!r}, expected "
                  f"{FORMAT!r})")
    for key in ("model", "source_table", "target_table"):
        if key not in d:
            raise bad(key, "required field is missing")
        if not isinstance(d[key], dict):
            raise bad(key, f"must be a JSON object, not {type(d[key]).__name__}")
    if "sha256" not in d:
        raise bad("sha256", "required field is missing, so the file cannot be checked")
    sha = d["sha256"]
    if not (isinstance(sha, str) and len(sha) == 64
            and all(c in "0123456789abcdef" for c in sha)):
        raise bad("sha256", "must be 64 lower-case hex digits")
    model = d["model"]
    if not isinstance(model.get("name"), str):
        raise bad("model.name", "required string is missing")
    if "requested" in model and not isinstance(model["requested"], str):
        raise bad("model.requested", "must be a string")
    if "a" not in model:
        raise bad("model.a", "required number is missing")
    a = model["a"]
    if not _finite(a) or a <= 0:
        raise bad("model.a", f"must be a finite number > 0, not {_show_number(a)}")
    offsets = model.get("offsets_eV", {})
    if not isinstance(offsets, dict):
        raise bad("model.offsets_eV", "must be an object of element → eV")
    for el, v in offsets.items():
        if el not in atomic_numbers:
            raise bad(f"model.offsets_eV.{el}", "not an element symbol")
        if not _finite(v):
            raise bad(f"model.offsets_eV.{el}", f"must be a finite number, not "
                      f"{_show_number(v)}")
    wrong = implausible(a, offsets)
    if wrong:
        raise bad(*wrong)
    if "alpha" in model and (not _finite(model["alpha"]) or model["alpha"] < 0):
        raise bad("model.alpha", "must be a finite number ≥ 0")
    ci = d.get("a_ci95")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                               and all(_finite(v) for v in ci)):
        raise bad("a_ci95", "must be [lo, hi] (finite numbers) or null")
    settings = d.get("settings", {})
    if not isinstance(settings, dict):
        raise bad("settings", "must be a JSON object")
    for key, v in settings.items():
        rule = {"n_bootstrap": 1, "cv_folds": 2, "random_state": None}.get(key, "unknown")
        if rule == "unknown":
            raise bad(f"settings.{key}", "unknown setting")
        if not isinstance(v, int) or isinstance(v, bool) or (rule is not None and v < rule):
            raise bad(f"settings.{key}", "must be an integer"
                      + (f" ≥ {rule}" if rule is not None else ""))
    for key in ("metrics", "calibration", "units"):
        if key in d and not isinstance(d[key], dict):
            raise bad(key, "must be a JSON object")
    if "chain" in d and not isinstance(d["chain"], list):
        raise bad("chain", "must be a list")
