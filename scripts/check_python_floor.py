"""Check that src/ runs on the oldest Python that pyproject.toml's requires-python admits.

Under that interpreter (found as ``pythonX.Y`` on PATH, under pyenv, or named by
$TEALIGN_FLOOR_PYTHON; missing is a failure, not a skip) every file must compile, and every
standard-library import that is not guarded by ``except ImportError``/``ModuleNotFoundError``
must import, with the names it takes (``tomllib``, ``typing.Self``, ``enum.StrEnum``...).
Needs no package installed; a second or two. ``--print-interpreter`` prints that
interpreter's path instead (``scripts/test_python_floor.sh`` runs the tests with it).
"""

from __future__ import annotations

import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARDS = {"ImportError", "ModuleNotFoundError"}

PROBE = """
import importlib, json, sys
bad = []
for path in sys.argv[2:]:
    try:
        compile(open(path, encoding="utf-8").read(), path, "exec")
    except SyntaxError as exc:
        bad.append(f"{path}:{exc.lineno}: {exc.msg}")
for path, line, mod, names in json.loads(sys.argv[1]):
    try:
        m = importlib.import_module(mod)
    except ImportError:
        bad.append(f"{path}:{line}: no module {mod}")
        continue
    for n in names:
        if not hasattr(m, n):
            try:
                importlib.import_module(f"{mod}.{n}")
            except ImportError:
                bad.append(f"{path}:{line}: {mod} has no {n}")
print("\\n".join(bad))
"""


def floor_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'^requires-python\s*=\s*">=\s*(3\.\d+)', text, re.M)
    if not m:
        sys.exit("pyproject.toml: requires-python must read \">=3.N\"")
    return m.group(1)


def find_interpreter(version: str) -> str | None:
    candidates = [os.environ.get("TEALIGN_FLOOR_PYTHON"), shutil.which(f"python{version}")]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{root}/versions/{version}.*/bin/python"), reverse=True)
    for exe in filter(None, candidates):
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == version:
            return exe
    return None


def stdlib_imports(path: Path) -> list:
    """(file, line, module, names) for each unguarded standard-library import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in GUARDS for h in node.handlers):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            pairs = [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            pairs = [(node.module, [a.name for a in node.names if a.name != "*"])]
        else:
            continue
        for mod, names in pairs:
            if mod.split(".")[0] in sys.stdlib_module_names and mod != "__future__":
                found.append((str(path.relative_to(ROOT)), node.lineno, mod, names))
    return found


def main() -> int:
    version = floor_version()
    exe = find_interpreter(version)
    if exe is None:
        print(f"requires-python >={version}, but no Python {version} interpreter here to "
              "check it with (set TEALIGN_FLOOR_PYTHON)", file=sys.stderr)
        return 1
    if sys.argv[1:] == ["--print-interpreter"]:
        print(exe)
        return 0
    files = sorted((ROOT / "src").rglob("*.py"))
    imports = [i for f in files for i in stdlib_imports(f)]
    out = subprocess.run([exe, "-c", PROBE, json.dumps(imports), *map(str, files)],
                         capture_output=True, text=True)
    bad = out.stdout.strip()
    if out.returncode != 0 or bad:
        print(f"src/ does not run on Python {version} (requires-python >={version}):\n"
              f"{bad}{out.stderr}", file=sys.stderr)
        return 1
    print(f"python floor {version}: {len(files)} files compile, {len(imports)} stdlib imports "
          "resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
