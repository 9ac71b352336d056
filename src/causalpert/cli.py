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
