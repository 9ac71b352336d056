"""The field's own tools (CellFlow, STATE, stadion) as subprocesses in virtual environments.

Their pins conflict with ours and with each other, so each peer lives in its own venv under
``peers_home()`` (``$CAUSALPERT_PEERS_HOME``, default ``~/.cache/causalpert/peers``), installed
from the pinned list shipped here (``requirements/<peer>.txt``) by ``install(name)`` /
``causalpert peers install NAME``. A peer is driven by its runner script (``runners/run_<peer>.py``,
run by the peer's own Python, importing nothing of causalpert) through files in a work folder:

- ``fit``: reads ``train.h5ad`` (X dense float32; obs ``perturbation``, ``dose``),
  ``features.csv`` (perturbation × feature, every perturbation the caller may ask about) and
  ``config.json`` (``control``, ``seed``, ``steps``, ``intended_targets``, peer options);
  writes the peer's own state (its own format, its own file names), ``fit.json``
  ({``seconds``}) and, a peer with a gene graph, ``graph.csv`` (gene × gene, entry (i, j) =
  weight of the edge i → j).
- ``predict``: reads ``request.json`` ({``perturbations``: [{``name``, ``dose``,
  ``features``}], ``n_cells``, ``seed``}); writes ``prediction.h5ad`` (``n_cells`` rows per
  request, in order) and ``predict.json`` ({``seconds``}).

The ``fake`` peer (runs in this interpreter, nothing to install) tests the protocol in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


class PeerNotInstalledError(RuntimeError):
    """The peer's virtual environment is missing or incomplete."""


class PeerFailedError(RuntimeError):
    """The peer's runner exited with an error (the message names its log)."""


@dataclass(frozen=True)
class Peer:
    """One peer: its pinned requirements (``requirements/<name>.txt``), what to install before
    them (e.g. the CPU torch wheel, so that nothing pulls a CUDA build), and whether it needs a
    venv at all (the fake peer runs in this interpreter)."""

    name: str
    description: str
    first: tuple[str, ...] = ()
    needs_venv: bool = True
    #: what it can be scored on: ``features`` (predicts unseen perturbations from features),
    #: ``doses`` (dose is an input), ``graph`` (writes the fitted gene graph, ``graph.csv``)
    can: tuple[str, ...] = field(default=())


PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("cellflow", "CellFlow (flow matching on perturbation embeddings; JAX), cellflow-tools",
         can=("features", "doses")),
    Peer("state", "STATE (Arc Institute's state-transition transformer; torch), arc-state",
         first=("torch==2.13.0",), can=("features", "doses")),  # dose as a feature
    Peer("stadion", "stadion (stationary diffusion, known-target interventions; JAX)",
         can=("graph",)),
    Peer("metrics", "pertpy + cell-eval: the field's metrics, for the cross-check only "
         "(bench/metrics_crosscheck.py), not a method", can=("metrics-only",)),
    Peer("fake", "a tiny stand-in for tests: nearest-seen-perturbation mean shift",
         needs_venv=False, can=("features", "doses")),
)}


def get_peer(name: str) -> Peer:
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose from {sorted(PEERS)}")
    return PEERS[name]


def peers_home() -> Path:
    """Where peer venvs live: ``$CAUSALPERT_PEERS_HOME`` or ``~/.cache/causalpert/peers``."""
    home = os.environ.get("CAUSALPERT_PEERS_HOME")
    return Path(home) if home else Path.home() / ".cache" / "causalpert" / "peers"


def requirements(name: str) -> str:
    """The pinned requirements of a peer (text of ``requirements/<name>.txt``)."""
    return resources.files(__name__).joinpath("requirements", f"{name}.txt").read_text()


def runner_script(name: str) -> Path:
    path = resources.files(__name__).joinpath("runners", f"run_{name}.py")
    return Path(str(path))


def _stamp(name: str) -> str:
    peer = get_peer(name)
    text = "\n".join(peer.first) + "\n" + requirements(name)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def venv_dir(name: str, home: Path | None = None) -> Path:
    return (home or peers_home()) / name


def _state(name: str, home: Path | None = None) -> str:
    """``ready``, ``not installed`` or ``stale`` (its venv was installed from other pins)."""
    if not get_peer(name).needs_venv:
        return "ready"
    stamp = venv_dir(name, home) / ".causalpert-installed"
    if not stamp.exists():
        return "not installed"
    return "ready" if stamp.read_text().strip() == _stamp(name) else "stale"


def python_of(name: str, home: Path | None = None) -> Path:
    """The interpreter that runs a peer; one-line error if its venv is not installed (or was
    installed from other pins)."""
    state, root = _state(name, home), venv_dir(name, home)
    if state == "not installed":
        raise PeerNotInstalledError(f"peer {name!r} is not installed (looked in {root}): run "
                                    f"`causalpert peers install {name}`")
    if state == "stale":
        raise PeerNotInstalledError(f"peer {name!r} in {root} was installed from other pins: "
                                    f"run `causalpert peers install {name}` again")
    return root / "bin" / "python" if get_peer(name).needs_venv else Path(sys.executable)


def install(name: str, *, home: Path | None = None, force: bool = False, log=print) -> dict:
    """Create the peer's venv and install its pins; returns {seconds, megabytes, path,
    fresh} (also kept as ``install.json`` in the venv). A ready venv of the same pins is kept
    unless ``force``.

    The venv counts as installed only once every pin is in (a stamp file written last, holding
    a hash of the pins), so an interrupted install is redone, never half-used.
    """
    peer = get_peer(name)
    if not peer.needs_venv:
        return {"seconds": 0.0, "megabytes": 0.0, "path": sys.executable, "fresh": False}
    root = venv_dir(name, home)
    if not force and _state(name, home) == "ready":
        try:
            return {**json.loads((root / "install.json").read_text()), "fresh": False}
        except (OSError, ValueError):
            pass  # no record of the install: redo it
    t0 = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"creating {root}")
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    req = root / "requirements.txt"
    req.write_text(requirements(name))
    for step in ([*peer.first], ["-r", str(req)]):
        if not step:
            continue
        log(f"pip install {' '.join(step)}")
        done = subprocess.run([*pip, *step], capture_output=True, text=True)
        if done.returncode != 0:
            (root / "install.log").write_text(done.stdout + done.stderr)
            raise PeerFailedError(f"installing peer {name!r} failed (pip exit "
                                  f"{done.returncode}); log: {root / 'install.log'}")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
    info = {"seconds": time.perf_counter() - t0, "megabytes": size / 2**20, "path": str(root),
            "pins": _stamp(name)}
    (root / "install.json").write_text(json.dumps(info))
    (root / ".causalpert-installed").write_text(_stamp(name))
    return {**info, "fresh": True}


def status(home: Path | None = None) -> list[dict]:
    """Per peer: ``ready``, ``not installed`` or ``stale: reinstall`` (other pins)."""
    out = []
    for name, peer in PEERS.items():
        state = _state(name, home)
        out.append({"peer": name, "description": peer.description,
                    "status": "stale: reinstall" if state == "stale" else state,
                    "python": str(python_of(name, home)) if state == "ready" else None,
                    "path": str(venv_dir(name, home))})
    return out


def run(name: str, command: str, workdir: Path, *args: str, home: Path | None = None,
        timeout: float | None = None) -> dict:
    """Run ``runners/run_<name>.py COMMAND WORKDIR ARGS`` in the peer's venv; returns the timing
    JSON it wrote (``<command>.json``) plus ``wall_seconds`` (the subprocess, start-up included).
    Output goes to ``WORKDIR/<command>.log``; a failure raises ``PeerFailedError`` naming it."""
    python = python_of(name, home)
    workdir = Path(workdir)
    log, timing_file = workdir / f"{command}.log", workdir / f"{command}.json"
    timing_file.unlink(missing_ok=True)  # never report an earlier run's seconds
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)  # the peer sees its own venv only
    with open(log, "w") as fh:
        try:
            done = subprocess.run([str(python), str(runner_script(name)), command, str(workdir),
                                   *args], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PeerFailedError(f"peer {name!r} {command} ran over {timeout:.0f} s; log: "
                                  f"{log}") from None
    if done.returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else "(no output)"
        raise PeerFailedError(f"peer {name!r} {command} failed (exit {done.returncode}): "
                              f"{last}; log: {log}")
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    timing["wall_seconds"] = time.perf_counter() - t0
    return timing


__all__ = ["PEERS", "Peer", "PeerFailedError", "PeerNotInstalledError", "get_peer", "install",
           "peers_home", "python_of", "requirements", "run", "runner_script", "status"]
