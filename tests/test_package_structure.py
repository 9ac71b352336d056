"""Layering: the causal core and the metrics import neither AnnData, pandas nor the rest of
causalpert (imports go one way: core, metrics ← data ← models ← benchmark ← cli)."""

import ast
import pathlib

import pytest

import causalpert

ROOT = pathlib.Path(causalpert.__file__).parent


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((a.name, 0) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


@pytest.mark.parametrize("package", ["core", "metrics"])
def test_pure_packages_stay_pure(package):
    files = list((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        for name, level in _imports(path):
            assert name.split(".")[0] not in ("anndata", "pandas"), f"{path} imports {name}"
            assert level <= 1, f"{path} imports from another causalpert subpackage"
            assert not name.startswith("causalpert"), f"{path} imports {name}"


def test_public_api():
    import causalpert as cp

    for name in cp.__all__:
        assert hasattr(cp, name), name
    assert callable(cp.simulate) and callable(cp.fit_causal) and callable(cp.datasets.sachs)


def test_importing_the_core_and_metrics_loads_no_anndata_or_pandas():
    import subprocess
    import sys

    code = ("import sys, causalpert.core, causalpert.metrics; "
            "print(sorted(m for m in ('anndata', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
