"""Command-line interface: each command is its arguments plus one library call."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="causalpert: learn a causal model of cells jointly with a generative intervention "
    "model; predict unseen perturbations, their target genes and the gene network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# wide tables stay readable when output goes to a file or a CI log
console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(code=1)


def _write_h5ad_atomic(adata, out: Path) -> None:
    """Write to a temporary file next to ``out``, then rename: no half-written files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5ad", dir=out.parent)
    os.close(fd)
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad file."),
    protocol: str = typer.Option("paper-synthetic", help="paper-synthetic or single-target."),
    sim: str = typer.Option("linear", help="Ground-truth causal model: linear or mlp."),
    seed: int = typer.Option(0, help="Seed: the same protocol, sim and seed give the same data."),
) -> None:
    """Simulate a seeded synthetic perturbation screen with known ground truth (AnnData)."""
    from .data.simulate import simulate as _simulate

    try:
        with console.status(f"simulating {protocol} ({sim}, seed {seed})"):
            adata = _simulate(protocol, sim=sim, seed=seed)
        _write_h5ad_atomic(adata, out)
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    split = adata.obs["split"].value_counts().to_dict()
    console.print(f"wrote {out}: {adata.n_obs:,} cells × {adata.n_vars} genes; "
                  + ", ".join(f"{k}: {v:,}" for k, v in sorted(split.items())))


@app.command()
def demo(
    sim: str = typer.Option("linear", help="Ground truth of the simulated data: linear or mlp."),
    seed: int = typer.Option(0, help="Seed of data and fits."),
    steps: int = typer.Option(3000, help="Adam steps of the known-target fit."),
    out: Path = typer.Option(Path("demo-out"), help="Where the GIM benchmark run is written."),
    gim: bool = typer.Option(True, help="Also fit GIM and baselines on one seed."),
) -> None:
    """Simulate paper-synthetic data; (1) fit the causal model with the true targets and print
    the recovered graph's AUPRC; (2) fit GIM (targets unknown) and baselines, print the table."""
    from .benchmark.known_targets import run_known_targets
    from .models import FitConfig

    try:
        res = run_known_targets(sim=sim, seed=seed, causal=sim, config=FitConfig(steps=steps))
    except (ValueError, RuntimeError) as exc:
        _fail(exc)
    d = len(res.genes)
    table = Table(title=f"(1) known-target fit on paper-synthetic ({sim} truth, seed {seed})")
    for col in ("metric", "value"):
        table.add_column(col)
    table.add_row("graph_auprc", f"{res.graph_auprc:.3f}")
    table.add_row("edge density (chance AUPRC)", f"{res.true_graph.sum() / (d * (d - 1)):.3f}")
    table.add_row("shd (threshold 0.1 × max)", str(res.shd))
    table.add_row("fit time (s)", f"{res.fit.history.seconds:.1f}")
    if res.true_max_real_eigenvalue is not None:
        table.add_row("max Re eig(W) learned / true",
                      f"{res.max_real_eigenvalue:.3f} / {res.true_max_real_eigenvalue:.3f}")
    console.print(table)
    if not gim:
        return
    _benchmark_and_print(f"(2) GIM vs baselines, paper-synthetic ({sim}), seed {seed}",
                         protocol="paper-synthetic", sim=sim, seeds=[seed], out=out,
                         methods=["gim", "mlp", "additive", "control", "oracle"])


def _read_data(data: str, backed: bool):
    """An AnnData from a path (.h5ad / .zarr; ``backed`` keeps X on disk) or ``sachs``."""
    import anndata as ad

    if data == "sachs":
        from .data.datasets import sachs

        return sachs()
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass an .h5ad or .zarr file, or 'sachs'")
    if backed:
        from .data.backed import read_lazy

        return read_lazy(path)
    return ad.read_zarr(path) if path.suffix == ".zarr" else ad.read_h5ad(path)


def _load_model(model_dir: Path):
    from .models import PerturbationModel

    return PerturbationModel.load(model_dir)


@app.command()
def fit(
    data: str = typer.Argument(..., help="Cells × genes: an .h5ad or .zarr file (obs holds the "
                               "perturbation and dose columns), or 'sachs' for the bundled data."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write "
                             "(safetensors + JSON)."),
    perturbation_key: str = typer.Option("perturbation", help="obs column naming each cell's "
                                         "perturbation."),
    dose_key: str = typer.Option("dose", help="obs column with doses ≥ 0 ('none': all 1)."),
    control: str = typer.Option(None, help="Label of control cells (default: 'control'; the "
                                "bundled Sachs data use its own label)."),
    model: str = typer.Option("gim", help="gim or a baseline: control, additive, mlp, "
                              "free-causal, de."),
    causal: str = typer.Option("linear", help="Causal model of gim / free-causal: linear or mlp."),
    steps: int = typer.Option(None, help="Training steps (default: the model's)."),
    refit_steps: int = typer.Option(None, help="gim: refit-stage steps (default 1000)."),
    seed: int = typer.Option(0, help="Seed of initialisation and minibatches."),
    device: str = typer.Option("cpu", help="gim: cpu, cuda or mps."),
    backed: bool = typer.Option(False, help="Keep X on disk and read minibatches from the file "
                                "(large data)."),
) -> None:
    """Fit a model on cells and save it: `causalpert fit cells.h5ad --out my_model`."""
    import time

    from .models import MODELS

    try:
        if model not in MODELS or model == "oracle":
            choices = sorted(m for m in MODELS if m != "oracle")
            raise ValueError(f"unknown model {model!r}; choose from {choices}")
        adata = _read_data(data, backed)
        if control is None:
            control = adata.uns.get("control", "control") if data == "sachs" else "control"
        options = {}
        if model in ("gim", "free-causal"):
            options["causal"] = causal
        if steps is not None and model in ("gim", "free-causal", "mlp"):
            options["steps"] = steps
        if model == "gim":
            options["device"] = device
            if refit_steps is not None:
                options["refit_steps"] = refit_steps
        m = MODELS[model](seed=seed, **options)
        t0 = time.perf_counter()
        m.fit(adata, perturbation_key=perturbation_key,
              dose_key=None if dose_key.lower() == "none" else dose_key, control=control)
        seconds = time.perf_counter() - t0
        m.save(out)
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        _fail(exc)
    console.print(f"fitted {model} on {adata.n_obs:,} cells × {adata.n_vars} genes "
                  f"({len(m.feature_table_)} perturbations) in {seconds:.1f} s; wrote {out}")


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="A model directory written by `causalpert fit`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad of predicted cells."),
    perturbation: list[str] = typer.Option(None, help="Perturbation name (repeatable)."),
    smiles: list[str] = typer.Option(None, help="SMILES of a molecule, seen in fit or not "
                                     "(repeatable; the model needs SMILES features)."),
    dose: float = typer.Option(1.0, help="Dose, in the units of the training obs column."),
    n_cells: int = typer.Option(500, help="Cells per perturbation."),
    mode: str = typer.Option("map", help="map (most likely intervention), mean or sample."),
    seed: int = typer.Option(None, help="Sampling seed (default: the model's)."),
) -> None:
    """Predict cells under perturbations (names or SMILES) and write them as AnnData."""
    try:
        if bool(perturbation) == bool(smiles):
            raise ValueError("give --perturbation NAME or --smiles SMILES (one kind)")
        m = _load_model(model_dir)
        pred = m.predict(perturbations=perturbation or None, smiles=smiles or None, doses=dose,
                         n_cells=n_cells, mode=mode, seed=seed)
        _write_h5ad_atomic(pred, out)
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    console.print(f"wrote {out}: {pred.n_obs:,} predicted cells × {pred.n_vars} genes")


@app.command()
def targets(
    model_dir: Path = typer.Argument(..., help="A model directory written by `causalpert fit`."),
    top: int = typer.Option(3, help="Genes shown per perturbation."),
    perturbation: list[str] = typer.Option(None, help="Only these perturbations (repeatable)."),
    out: Path = typer.Option(None, help="Also write the full perturbation × gene table (CSV)."),
) -> None:
    """Each perturbation's most likely target genes, with probabilities."""
    try:
        m = _load_model(model_dir)
        if not m.has_target_scores:
            raise ValueError(f"the {m.name} model gives no target scores: fit gim, de, "
                             "free-causal or additive")
        probs = m.target_probabilities(perturbation or None)
        if out is not None:
            _write_text_atomic(out, probs.to_csv())
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    table = Table(title=f"most likely targets ({m.name})")
    table.add_column("perturbation")
    for i in range(min(top, probs.shape[1])):
        table.add_column(f"#{i + 1}")
    for name, row in probs.iterrows():
        best = row.sort_values(ascending=False).iloc[:top]
        table.add_row(str(name), *[f"{g} {v:.3f}" for g, v in best.items()])
    console.print(table)


@app.command()
def graph(
    model_dir: Path = typer.Argument(..., help="A model directory written by `causalpert fit`."),
    top: int = typer.Option(20, help="Strongest edges shown."),
    out: Path = typer.Option(None, help="Also write the gene × gene weights (CSV)."),
) -> None:
    """The strongest edges of the learned gene network (source → target, weight)."""
    try:
        m = _load_model(model_dir)
        G = m.graph()
        if out is not None:
            _write_text_atomic(out, G.to_csv())
    except (NotImplementedError, ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    edges = G.stack()
    edges = edges[edges.index.get_level_values(0) != edges.index.get_level_values(1)]
    table = Table(title=f"strongest edges ({m.name})")
    for col in ("source", "target", "weight"):
        table.add_column(col)
    for (i, j), w in edges.reindex(edges.abs().sort_values(ascending=False).index)[:top].items():
        table.add_row(str(i), str(j), f"{w:.3f}")
    console.print(table)


def _write_text_atomic(out: Path, text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, out)


@app.command()
def benchmark(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for results.csv, "
                             "results.json and summary.csv."),
    protocol: str = typer.Option("paper-synthetic", help="Benchmark protocol: paper-synthetic "
                                 "(simulated, known truth), sachs (bundled flow cytometry) or "
                                 "sciplex3 (your file, --data)."),
    sim: str = typer.Option("linear", help="Ground truth for synthetic protocols: linear or mlp."),
    methods: str = typer.Option("gim,mlp,additive,free-causal,de,control,oracle",
                                help="Comma-separated methods. Ablations of gim: gim-joint, "
                                "gim-exact, gim-joint-mlphead, gim-vstat."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    workers: int = typer.Option(1, help="Parallel worker processes (each uses one thread)."),
    executor: str = typer.Option("local", help="local (this process or --workers processes) "
                                 "or ray (one Ray task per fit; needs causalpert[ray])."),
    address: str = typer.Option(None, help="Ray cluster address (--executor ray; default: "
                                "start a local Ray instance)."),
    data: Path = typer.Option(None, help="Your sciplex3 h5ad file (--protocol sciplex3)."),
    cell_line: str = typer.Option("A549", help="Cell line of a sciplex3 run."),
) -> None:
    """Fit and score methods on a protocol; print the summary (mean ± sd over seeds)."""
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        _fail(ValueError(f"--seeds must be comma-separated integers, got {seeds!r}"))
    _benchmark_and_print(f"{protocol} ({sim}), seeds {seeds} — mean ± sd over seeds",
                         protocol=protocol, sim=sim, seeds=seed_list, out=out, workers=workers,
                         executor=executor, address=address, data=data, cell_line=cell_line,
                         methods=[m.strip() for m in methods.split(",") if m.strip()])


def _benchmark_and_print(title: str, **kwargs) -> None:
    """Run the benchmark runner, print its headline table, name the files written."""
    from .benchmark.report import headline_table
    from .benchmark.runner import run_benchmark

    try:
        _, summary = run_benchmark(**kwargs)
    except (ValueError, RuntimeError, OSError, ImportError) as exc:
        _fail(exc)
    console.print(_rich_table(headline_table(summary), title))
    console.print(f"wrote {kwargs['out']}/results.csv, results.json, summary.csv")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Directory written by `causalpert benchmark`."),
    markdown: bool = typer.Option(False, help="Print a markdown table instead."),
) -> None:
    """Print the headline table (mean ± sd over seeds) of a finished benchmark run."""
    import pandas as pd

    from .benchmark.report import headline_table, markdown_table

    path = run_dir / "summary.csv"
    if not path.is_file():
        _fail(FileNotFoundError(f"{path} not found: pass the --out directory of a benchmark run"))
    summary = pd.read_csv(path)
    table = headline_table(summary)
    if markdown:
        print(markdown_table(table))
    else:
        console.print(_rich_table(table, f"{summary['protocol'].iloc[0]}: mean ± sd over seeds"))


def _rich_table(df, title: str) -> Table:
    table = Table(title=title)
    table.add_column("method")
    for c in df.columns:
        table.add_column(str(c), justify="right")
    for name, row in df.iterrows():
        table.add_row(str(name), *[str(v) for v in row])
    return table


def main() -> None:  # pragma: no cover
    sys.exit(app())
