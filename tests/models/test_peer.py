"""Peers as subprocesses: the protocol (files in, cells + timing out), errors and capabilities,
tested with the fake peer (runs in this interpreter) and a real venv install of no packages."""

import os
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from causalpert import peers
from causalpert.benchmark import runner
from causalpert.benchmark.protocols import paper_synthetic
from causalpert.cli import app
from causalpert.data import SyntheticDesign
from causalpert.models import PeerModel

SMALL = SyntheticDesign(d=6, n_features=8, n_train_perturbations=8, n_ood_perturbations=3,
                        n_control=200, n_test_cells=40)


@pytest.fixture(scope="module")
def pdata():
    return paper_synthetic(sim="linear", seed=0, design=SMALL)


@pytest.fixture(scope="module")
def fitted(pdata, tmp_path_factory):
    model = PeerModel(peer="fake", workdir=str(tmp_path_factory.mktemp("fake")))
    return model.fit(pdata.train, **pdata.fit_kwargs)


def test_fake_peer_round_trip_gives_the_seen_shift_and_its_timing(pdata, fitted):
    train = pdata.train
    p = next(x for x in train.obs["perturbation"].unique() if x != "control")
    dose = float(train.obs.loc[train.obs["perturbation"] == p, "dose"].iloc[0])
    pred = fitted.predict([p, p], [dose, 0.0], n_cells=300, seed=1)
    assert pred.shape == (600, SMALL.d) and list(pred.var_names) == list(fitted.genes_)
    X = np.asarray(train.X)
    obs = train.obs
    mu0 = X[(obs["perturbation"] == "control").to_numpy()].mean(0)
    shift = X[((obs["perturbation"] == p) & (obs["dose"] == dose)).to_numpy()].mean(0) - mu0
    got = np.asarray(pred.X[:300]).mean(0) - mu0
    sd = X.std(0)
    # control resampled + the observed shift: equal up to the resampling noise of 300 cells
    assert np.abs(got - shift).max() < 0.3 * sd.max()
    assert np.abs(np.asarray(pred.X[300:]).mean(0) - mu0).max() < 0.3 * sd.max()  # dose 0
    t = fitted.diagnostics()
    assert 0 < t["peer_fit_seconds"] < t["peer_fit_wall_seconds"]
    assert t["peer_predict_seconds"] > 0


def test_fake_peer_predicts_an_unseen_perturbation_from_features(pdata, fitted):
    new = list(pdata.tests["full_ood"].obs["perturbation"].unique())[:2]
    pred = fitted.predict(new, 1.0, n_cells=10)
    assert pred.shape == (20, SMALL.d) and np.isfinite(pred.X).all()


def test_a_failing_peer_names_its_message_and_log(pdata, tmp_path):
    model = PeerModel(peer="fake", workdir=str(tmp_path), fail="fit")
    with pytest.raises(peers.PeerFailedError, match="asked to fail in fit") as err:
        model.fit(pdata.train, **pdata.fit_kwargs)
    assert str(tmp_path / "fit.log") in str(err.value)
    assert "asked to fail in fit" in (tmp_path / "fit.log").read_text()
    model = PeerModel(peer="fake", workdir=str(tmp_path), fail="predict")
    model.fit(pdata.train, **pdata.fit_kwargs)
    seen = next(x for x in pdata.train.obs["perturbation"].unique() if x != "control")
    with pytest.raises(peers.PeerFailedError, match=r"predict failed \(exit 1\)"):
        model.predict([seen], 1.0, n_cells=5)
    assert not (tmp_path / "prediction.h5ad").exists()


def test_a_peer_without_features_or_doses_says_what_it_cannot_predict(pdata, fitted,
                                                                      monkeypatch):
    monkeypatch.setitem(peers.PEERS, "fake", peers.Peer("fake", "no features, no doses",
                                                        needs_venv=False))
    seen = next(x for x in pdata.train.obs["perturbation"].unique() if x != "control")
    new = pdata.tests["full_ood"].obs["perturbation"].iloc[0]
    with pytest.raises(ValueError, match=rf"unknown perturbation '{new}'.*seen in fit"):
        fitted.predict([new], 1.0, n_cells=5)
    with pytest.raises(ValueError, match=r"at dose 0.123.*takes no dose"):
        fitted.predict([seen], 0.123, n_cells=5)


def test_missing_peer_says_how_to_install_it(pdata, tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALPERT_PEERS_HOME", str(tmp_path))
    with pytest.raises(peers.PeerNotInstalledError,
                       match="run `causalpert peers install cellflow`"):
        PeerModel(peer="cellflow").fit(pdata.train, **pdata.fit_kwargs)
    with pytest.raises(ValueError, match="unknown peer 'celflow'"):
        PeerModel(peer="celflow")
    res = CliRunner().invoke(app, ["peers", "list"])
    assert res.exit_code == 0 and "not installed" in res.output and "ready" in res.output


def test_install_makes_a_venv_that_counts_only_once_complete(tmp_path, monkeypatch):
    """A real venv (no packages to fetch): installed → ready; other pins → stale."""
    monkeypatch.setitem(peers.PEERS, "tiny", peers.Peer("tiny", "empty venv"))
    pins = {"text": "# nothing pinned\n"}
    monkeypatch.setattr(peers, "requirements", lambda name: pins["text"])
    info = peers.install("tiny", home=tmp_path, log=lambda msg: None)
    python = peers.python_of("tiny", home=tmp_path)
    assert python == tmp_path / "tiny" / "bin" / "python" and os.access(python, os.X_OK)
    assert info["megabytes"] > 1 and info["seconds"] > 0
    assert {r["peer"]: r["status"] for r in peers.status(tmp_path)}["tiny"] == "ready"
    again = peers.install("tiny", home=tmp_path, log=lambda msg: None)  # kept, not redone
    assert not again["fresh"] and again["seconds"] == info["seconds"]
    pins["text"] = "numpy==1.0\n"
    with pytest.raises(peers.PeerNotInstalledError, match="other pins"):
        peers.python_of("tiny", home=tmp_path)
    # a failed install leaves no stamp, so the venv never counts as installed
    monkeypatch.setattr(peers, "requirements", lambda name: "no-such-package-zzz==9.9\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(peers.PeerFailedError, match=r"install\.log"):
        peers.install("tiny", home=tmp_path, log=lambda msg: None)
    with pytest.raises(peers.PeerNotInstalledError, match="not installed"):
        peers.python_of("tiny", home=tmp_path)


def test_benchmark_runs_a_peer_like_any_method(tmp_path, monkeypatch):
    monkeypatch.setitem(runner.METHODS, "fake-peer", ("peer", {"peer": "fake"}))
    _, summary = runner.run_benchmark(
        protocol="paper-synthetic", sim="linear", methods=["fake-peer", "control"], seeds=[0],
        out=tmp_path, design=SMALL, progress=False)
    s = summary.set_index(["method", "split", "metric"])["mean"]
    for split in ("id", "partial_ood", "full_ood", "combo"):
        assert np.isfinite(s[("fake-peer", split, "edist")])
    # the seen shifts: far better than "no effect" in distribution on id
    assert s[("fake-peer", "id", "edist")] < 0.5 * s[("control", "id", "edist")]
    assert s[("fake-peer", "train", "diag_peer_fit_seconds")] > 0


def test_runner_scripts_import_nothing_of_causalpert():
    for path in peers.runner_script("fake").parent.glob("*.py"):
        assert "causalpert" not in "".join(
            ln for ln in path.read_text().splitlines() if ln.lstrip().startswith(("import",
                                                                                  "from"))), path
    assert sys.executable  # the fake runs in this interpreter


def test_benchmark_checks_peers_first_and_records_a_failing_peer(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALPERT_PEERS_HOME", str(tmp_path / "none"))
    with pytest.raises(peers.PeerNotInstalledError, match="peers install cellflow"):
        runner.run_benchmark(protocol="paper-synthetic", sim="linear",
                             methods=["control", "cellflow"], seeds=[0], out=tmp_path / "a",
                             design=SMALL, progress=False)
    assert not (tmp_path / "a" / "jobs").exists() or not any((tmp_path / "a" / "jobs").iterdir())
    monkeypatch.setitem(runner.METHODS, "broken-peer", ("peer", {"peer": "fake",
                                                                "fail": "predict"}))
    results, _ = runner.run_benchmark(
        protocol="paper-synthetic", sim="linear", methods=["broken-peer", "control"],
        seeds=[0], out=tmp_path / "b", design=SMALL, progress=False)
    failed = results.query("metric == 'fit_failed'")
    assert list(failed["method"]) == ["broken-peer"]
    assert (results.query("method == 'control'")["metric"] == "edist").any()
