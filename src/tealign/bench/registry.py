"""The benchmark dataset registry: name → source, licence, citation, prepared file and sha256.

Lookup order for a dataset's prepared file (docs/architecture.md §8.1): ``--data PATH``, then
``$TEALIGN_DATA_DIR/<file>`` (a directory of prepared files; CI and tests point it at
``../shared/data``), then the user cache (``$XDG_CACHE_HOME/tealign/data/<file>``), filled by
``tealign data fetch``, which downloads, prepares and records the download's own sha256.
``sha256`` is that of the prepared file as it stands in the offline mirror.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tealign.errors import SetupError


@dataclass(frozen=True)
class Dataset:
    name: str
    file: str  # relative path of the prepared file
    url: str  # where the prepared file (or its source) can be downloaded
    licence: str
    citation: str
    sha256: str
    prepare: str  # how the download becomes the prepared file
    description: str


REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "reactions", "reactions/rdb7_forward.extxyz.gz",
            "https://github.com/heid-lab/reaction_database",
            "MIT", "Spiekermann, Pattanaik, Green, Sci. Data 9, 417 (2022)",
            "249eb2f4b5c33ee864b4918e9535fe3863d78db40f2e072f5a741450090823c2",
            "RDB7 forward reactions: reactant, TS and product frames (role=r|ts|p) with "
            "barrier_kcal_mol, gzipped extxyz (a subset of the 11,926 reactions)",
            "RDB7 reactions, ωB97X-D3/def2-TZVP geometries, CCSD(T)-F12 barriers"),
        Dataset(
            "biaryl-csv", "biaryl/OpenFF_Rowley_Biaryl_v1-0.csv",
            "https://github.com/Boehringer-Ingelheim/TorsionProfiler",
            "MIT (TorsionProfiler); data CC-BY-4.0 (OpenFF)",
            "OpenFF Rowley biaryl torsion drives, B3LYP-D3(BJ)/DZVP",
            "ee2efd1e5235f788b0b3932640ed240560f08939d3c2d95f64a5ca16f97dc696",
            "tab-separated profiles as shipped by TorsionProfiler",
            "biaryl torsion profiles (hartree, 15° grid)"),
        Dataset(
            "biaryl-sdf", "biaryl/OpenFF_Rowley_Biaryl_v1-0.sdf",
            "https://github.com/Boehringer-Ingelheim/TorsionProfiler",
            "MIT (TorsionProfiler); data CC-BY-4.0 (OpenFF)",
            "OpenFF Rowley biaryl torsion drives",
            "00675b385ced6e419f48ebe96c05beda10e941fe0e9f527daad5ce04ffe3e50a",
            "one 3D geometry per fragment, dihedral atoms mapped 1-2-3-4",
            "biaryl starting geometries"),
        Dataset(
            "water-exp", "water/experimental_reference.npz",
            "https://pypi.org/project/mlipaudit/0.1.8/", "Apache-2.0",
            "Skinner et al., J. Chem. Phys. 138, 074506 (2013)",
            "6b0ef025d1a44b43779e66970035723115100685730d87fd8bdf8d70a1bc1da4",
            "arrays r_OO, g_OO taken from mlipaudit's package data",
            "O–O RDF of liquid water from X-ray diffraction"),
        Dataset(
            "water-tip3p", "water/tip3p_500ps.npz", "https://pypi.org/project/mlipaudit/0.1.8/",
            "Apache-2.0", "mlipaudit 0.1.8 TIP3P reference run",
            "febf73ee7d604bb3e29eb29263e0d72e0d09e7a83e3861c6d6317d88fc52ebd9",
            "arrays r_OO, g_OO", "O–O RDF, 500 ps TIP3P"),
        Dataset(
            "water-tip4p", "water/tip4p_500ps.npz", "https://pypi.org/project/mlipaudit/0.1.8/",
            "Apache-2.0", "mlipaudit 0.1.8 TIP4P reference run",
            "8438ed9d029d76478b8f13671ca73877978334bda73d45d59ba8b5e1bc88229c",
            "arrays r_OO, g_OO", "O–O RDF, 500 ps TIP4P"),
        # computed by tealign itself and shipped in the repository (datasets/bridge-mini):
        # `tealign bench cross` also finds it in the source checkout; sha256 of that file.
        Dataset(
            "bridge-mini", "bridge-mini/bridge-mini.extxyz",
            "datasets/bridge-mini in the tealign repository (no download)", "MIT",
            "tealign bridge-mini: geometries from the experimental crystal structures cited "
            "in datasets/bridge-mini/make_geometries.py",
            "eafc09dc17736eedc130db3a913f334f5c6d2e758b6d7c1ba242eeb80f2262f3",
            "datasets/bridge-mini/regenerate.sh: make_geometries.py, `tealign compute calib` "
            "(molecules at target and source level, periodic frames at target level), "
            "make_geometries.py --combine; bridge.json beside it defines the items",
            "cross-domain reactions, adsorption and molecular-crystal lattice energies"),
    ]
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tealign" / "data"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def get(name: str) -> Dataset:
    try:
        return REGISTRY[name]
    except KeyError:
        raise SetupError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}",
                         field="dataset") from None


def candidates(name: str) -> list[Path]:
    ds = get(name)
    out = []
    if os.environ.get("TEALIGN_DATA_DIR"):
        out.append(Path(os.environ["TEALIGN_DATA_DIR"]) / ds.file)
    out.append(cache_dir() / ds.file)
    return out


def locate(name: str, data: str | Path | None = None) -> Path:
    """The prepared file of ``name``; SetupError saying how to get it when it is nowhere."""
    if data is not None:
        p = Path(data)
        if not p.exists():
            raise SetupError("no such file", file=str(p), field="--data")
        return p
    for p in candidates(name):
        if p.exists():
            return p
    ds = get(name)
    raise SetupError(
        f"benchmark data '{name}' not found (looked in {', '.join(map(str, candidates(name)))})"
        f"; get it with `tealign data fetch {name}` (source {ds.url}), point "
        "TEALIGN_DATA_DIR at a directory of prepared files, or pass --data PATH",
        field="--data")


def fetch(name: str, url: str | None = None) -> dict:
    """Download ``name`` (https:// or file://) into the user cache, verify, record sha256s."""
    ds = get(name)
    src = url or ds.url
    dest = cache_dir() / ds.file
    from tealign.io.outputs import remove_inside

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    try:
        with urllib.request.urlopen(src) as resp, open(tmp, "wb") as fh:  # noqa: S310
            shutil.copyfileobj(resp, fh)
    except Exception as exc:
        remove_inside(dest.parent, tmp)
        raise SetupError(f"download failed: {exc}", file=src, field=name) from None
    download_sha = sha256_file(tmp)
    # the registry's URLs point at prepared files; preparation is then the identity
    prepared_sha = download_sha
    matches = prepared_sha == ds.sha256
    if not matches:
        remove_inside(dest.parent, tmp)
        raise SetupError(f"sha256 of the prepared file is {prepared_sha}, expected "
                         f"{ds.sha256}; the source changed or the download is corrupt",
                         file=src, field=name)
    os.replace(tmp, dest)
    record = {"name": name, "url": src, "download_sha256": download_sha,
              "prepared_sha256": prepared_sha, "file": str(dest)}
    (dest.parent / f"{Path(ds.file).name}.source.json").write_text(json.dumps(record, indent=2))
    return record


def verify(name: str) -> dict:
    ds = get(name)
    for p in candidates(name):
        if p.exists():
            sha = sha256_file(p)
            return {"name": name, "file": str(p), "sha256": sha, "ok": sha == ds.sha256}
    return {"name": name, "file": None, "sha256": None, "ok": False}
