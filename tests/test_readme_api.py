"""The README's "Python API" example runs as written, on the bundled mini datasets."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    if not (ROOT / "datasets" / "calib-qm9" / "calib-qm9.extxyz").exists():
        pytest.skip("the bundled mini datasets are not in this checkout")
    for module in ("lmdb", "ase_db_backends"):  # the example writes and reads an .aselmdb
        pytest.importorskip(module, reason="the README example reads shards: tealign[mace]")
    blocks = python_blocks("Python API")
    assert len(blocks) >= 4
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md (Python API)", "exec"), namespace)
    run = tmp_path / "tealign-run"
    assert (run / "fit" / "fit.json").exists() and (run / "fit" / "alignment.json").exists()
    assert (run / "report.html").exists() and (run / "organic_on_pbe.extxyz").exists()
    assert namespace["res"].frames_out > 0
