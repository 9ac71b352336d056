"""Atomic output (causalpert._io): content, umask permissions, nothing half-written on errors."""

import os
import stat

import pytest
from typer.testing import CliRunner

from causalpert._io import atomic_dir, atomic_path, atomic_write


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class Boom(Exception):
    pass


def test_writes_content_with_umask_permissions(tmp_path, umask):
    text, data = tmp_path / "sub" / "a.txt", tmp_path / "b.bin"
    with atomic_write(text) as fh:
        fh.write("héllo\n")
    with atomic_write(data, "wb") as fh:
        fh.write(b"\x00\x01")
    with atomic_path(tmp_path / "c.h5ad") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".c.h5ad")
        tmp.write_bytes(b"path writer")
    assert text.read_text(encoding="utf-8") == "héllo\n"  # parent directory created
    assert data.read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.h5ad").read_bytes() == b"path writer"
    for f in (text, data, tmp_path / "c.h5ad"):
        assert _mode(f) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "c.h5ad", "sub"]


def test_replaces_an_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("exists", [False, True])
def test_an_error_mid_write_leaves_no_trace(tmp_path, exists):
    target = tmp_path / "a.txt"
    if exists:
        target.write_text("old")
    with pytest.raises(Boom), atomic_write(target) as fh:
        fh.write("half")
        fh.flush()
        raise Boom
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise Boom
    if exists:
        assert target.read_text() == "old"
    assert os.listdir(tmp_path) == (["a.txt"] if exists else [])


def test_bad_mode():
    with pytest.raises(ValueError, match="mode must be"), atomic_write("x", "a"):
        pass


def test_atomic_dir(tmp_path, umask):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.json").write_text("old")
    with pytest.raises(Boom), atomic_dir(target) as tmp:
        (tmp / "new.json").write_text("half")
        raise Boom
    assert os.listdir(tmp_path) == ["model"] and os.listdir(target) == ["old.json"]
    with atomic_dir(target) as tmp:
        (tmp / "new.json").write_text("new")
    assert os.listdir(target) == ["new.json"] and os.listdir(tmp_path) == ["model"]
    assert _mode(target) == 0o777 & ~umask


def test_cli_outputs_have_umask_permissions(tmp_path):
    from causalpert.cli import app
    from causalpert.data import SyntheticDesign, simulate

    design = SyntheticDesign(d=5, n_features=6, n_train_perturbations=5, n_ood_perturbations=2,
                             n_control=120, n_test_cells=20)
    adata = simulate("paper-synthetic", seed=0, design=design)
    data = tmp_path / "cells.h5ad"
    adata[adata.obs["split"] == "train"].copy().write_h5ad(data)
    runner = CliRunner()
    old = os.umask(0o022)
    try:
        res = runner.invoke(app, ["fit", str(data), "--model", "control", "--out",
                                  str(tmp_path / "model")])
        assert res.exit_code == 0, res.output
        pred = tmp_path / "pred.h5ad"
        res = runner.invoke(app, ["predict", str(tmp_path / "model"), "--perturbation",
                                  "pert_00", "--n-cells", "5", "--out", str(pred)])
        assert res.exit_code == 0, res.output
    finally:
        os.umask(old)
    assert _mode(pred) == 0o644  # mkstemp used to make it 0600
    assert _mode(tmp_path / "model") == 0o755
    assert _mode(tmp_path / "model" / "model.json") == 0o644
    assert sorted(os.listdir(tmp_path)) == ["cells.h5ad", "model", "pred.h5ad"]
