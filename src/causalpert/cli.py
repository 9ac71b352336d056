"""Command-line interface: each command is its arguments plus one library call."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ._io import atomic_path, atomic_write

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


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad file."),
    protocol: str = typer.Option("paper-synthetic", help="paper-synthetic, activity-synthetic, "
                                 "single-target or knockout-screen."),
    sim: str = typer.Option("linear", help="Ground-truth causal model: linear or mlp."),
    seed: int = typer.Option(0, help="Seed: the same protocol, sim and seed give the same data."),
) -> None:
    """Simulate a seeded synthetic perturbation screen with known ground truth (AnnData)."""
    from .data.simulate import simulate as _simulate

    try:
        with console.status(f"simulating {protocol} ({sim}, seed {seed})"):
            adata = _simulate(protocol, sim=sim, seed=seed)
        with atomic_path(out) as tmp:
            adata.write_h5ad(tmp)
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    split = adata.obs["split"].value_counts().to_dict()
    console.print(f"wrote {out}: {adata.n_obs:,} cells × {adata.n_vars} genes; "
                  + ", ".join(f"{k}: {v:,}" for k, v in sorted(split.items())))


@app.command()
def demo(
    seed: int = typer.Option(0, help="Seed of the data splits, fits and sampled cells."),
    out: Path = typer.Option(Path("report"), help="Report directory (index.html + PNGs); the "
                             "benchmark runs go to OUT/runs."),
    steps: int = typer.Option(None, help="Training steps of every iterative model (default: "
                              "each model's own; small values only for a smoke test)."),
    workers: int = typer.Option(2, help="Parallel worker processes for the benchmarks."),
) -> None:
    """The main job on bundled data (about 6 minutes on 2 cores, 12 when another job shares
    them): GIM on Sachs 2005 (held-out cells, target proteins, network), GIM on the Papalexi
    2021 CRISPR knockouts (held-out and unseen knockouts, knocked-out gene ranks, network
    around the pathway genes), the `sachs` benchmark against baselines, a quick
    `paper-synthetic` one, and an HTML report, OUT/index.html."""
    import time

    import matplotlib

    matplotlib.use("Agg")

    from .benchmark.demo import sachs_gim
    from .benchmark.demo_papalexi import papalexi_gim
    from .benchmark.html_report import summary_sections, write_report

    t0 = time.perf_counter()
    short = {} if steps is None else {
        "gim": {"steps": steps, "refit_steps": steps}, "free-causal": {"steps": steps},
        "mlp": {"steps": steps}}
    console.rule(f"[1/5] GIM on Sachs 2005, seed {seed}: fit on 80 % of the cells, then on all")
    try:
        gim = sachs_gim(seed=seed, options=short.get("gim"))
    except (ValueError, RuntimeError) as exc:
        _fail(exc)
    ranks = gim.ranks.copy()
    ranks["rank (of 11)"] = ranks["rank (of 11)"].map("{:.1f}".format)
    for col in ("score", "probability"):
        ranks[col] = ranks[col].map(lambda v: "" if v != v else f"{v:.3f}")
    console.print(_rich_table(ranks, "GIM on Sachs (all cells): rank of each intended target "
                              "by target score (as the sachs benchmark ranks)", first="reagent"))
    console.print(f"GIM network vs the 17-edge consensus: AUPRC {gim.graph_auprc:.3f} "
                  f"(random ≈ 0.15); fits took {gim.seconds['train']:.0f} s (80 %) and "
                  f"{gim.seconds['all']:.0f} s (all cells)")
    console.rule(f"[2/5] GIM on Papalexi 2021, seed {seed}: blind fit on all cells, then on "
                 "80 % without JAK2")
    try:
        pap = papalexi_gim(seed=seed, options=short.get("gim"))
    except (ValueError, RuntimeError) as exc:
        _fail(exc)
    pranks = pap.ranks.copy()
    rank_col = next(c for c in pranks.columns if c.startswith("rank"))
    pranks[rank_col] = pranks[rank_col].map("{:.1f}".format)
    console.print(_rich_table(pranks, "GIM on Papalexi 2021 (blind, all cells): rank of each "
                              "knocked-out gene", first="label"))
    console.print("predicted vs observed mean shift per gene, Pearson r: "
                  + ", ".join(f"{g} {r:.2f}" for g, r in pap.pearson.items())
                  + f" (JAK2 never seen in training); fits took {pap.seconds['all']:.0f} s "
                  f"(all cells) and {pap.seconds['train']:.0f} s (80 %)")
    runs = out / "runs"
    plan = (("3/5", "sachs", ["gim", "free-causal", "de", "mlp", "additive", "control"]),
            ("4/5", "paper-synthetic", ["gim", "mlp", "additive", "control", "oracle"]))
    summaries = {}
    for step, name, methods in plan:
        console.rule(f"[{step}] benchmark {name}, seed {seed}: {', '.join(methods)}")
        summaries[name] = _benchmark_and_print(
            f"{name}, seed {seed}", protocol=name, sim="linear", methods=methods,
            seeds=[seed], out=runs / name, workers=workers, overrides=short, fresh=True)
    console.rule("[5/5] HTML report")
    sections = list(gim.sections) + list(pap.sections)
    for name, summary in summaries.items():
        sections += summary_sections(summary, name=name, grid=True)
    intro = (
        f"Seed {seed}, {time.perf_counter() - t0:.0f} s in all. (1) GIM (linear causal model) "
        f"on the bundled Sachs 2005 flow-cytometry data, fitted on 80 % of each condition "
        f"({gim.seconds['train']:.0f} s) and on all cells ({gim.seconds['all']:.0f} s). "
        f"(2) GIM on the bundled Papalexi 2021 CRISPR knockouts in THP-1 cells (162 modelled "
        f"genes): blind on all cells with opaque knockout labels ({pap.seconds['all']:.0f} s; "
        f"which gene does each knockout hit?) and on 80 % of each knockout's cells without "
        f"JAK2 ({pap.seconds['train']:.0f} s; held-out STAT1 and IFNGR2 cells, JAK2 predicted "
        f"from its gene name). "
        f"(3) The sachs benchmark (docs/benchmarks.md): {', '.join(plan[0][2])}. (4) A quick "
        f"paper-synthetic run (linear ground truth): {', '.join(plan[1][2])}; to stay within "
        "10 minutes it uses one seed (the full protocol reports seeds 0-4) and leaves out "
        "free-causal and de (run `causalpert benchmark` for those). Raw results: "
        "runs/<protocol>/results.csv and summary.csv next to this page."
        + ("" if steps is None else f" Smoke test: {steps} training steps per model, so the "
           "numbers mean nothing."))
    index = write_report(out, title=f"causalpert demo (seed {seed})",
                         command=f"causalpert demo --seed {seed} --out {out}"
                         + ("" if steps is None else f" --steps {steps}"),
                         sections=sections, intro=intro)
    console.print(f"wrote {index} ({time.perf_counter() - t0:.0f} s): open it in a browser")


#: bundled data sets the CLI takes by name
BUNDLED = ("sachs", "papalexi2021", "norman2019")


def _read_data(data: str, backed: bool):
    """An AnnData from a path (.h5ad / .zarr; ``backed`` keeps X on disk) or a bundled name
    (``papalexi2021``: its modelled genes, ``datasets.papalexi_genes``)."""
    if data in BUNDLED:
        from . import datasets

        adata = getattr(datasets, data)()
        if data == "papalexi2021":
            adata = adata[:, datasets.papalexi_genes(adata)].copy()
        return adata
    from .data.backed import read_anndata

    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass an .h5ad or .zarr file, or one of "
                                f"{', '.join(BUNDLED)} (bundled)")
    return read_anndata(path, backed=backed)


def _load_model(model_dir: Path):
    from .models import PerturbationModel

    return PerturbationModel.load(model_dir)


@app.command()
def fit(
    data: str = typer.Argument(..., help="Cells × genes: an .h5ad or .zarr file (obs holds the "
                               "perturbation and dose columns), or a bundled data set: sachs, "
                               "papalexi2021 (CRISPR knockouts), norman2019 (activation pairs)."),
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
    reselect_steps: int = typer.Option(0, help="gim: re-select the targets after the refit "
                                       "for this many steps, then refit again (e.g. 1000): "
                                       "better calibrated targets and graph, ≈ 1.6× the fit "
                                       "time; worse predictions for new drugs on synthetic "
                                       "data (README)."),
    seed: int = typer.Option(0, help="Seed of initialisation and minibatches."),
    device: str = typer.Option("cpu", help="gim: cpu, cuda or mps."),
    activity: bool = typer.Option(False, help="gim: targets may also change their activity "
                                  "(scale their outgoing edges), for drugs that inhibit or "
                                  "activate a protein rather than change its level."),
    backed: bool = typer.Option(False, help="Keep X on disk and read minibatches from the file "
                                "(large data)."),
    intended_targets: bool = typer.Option(True, "--intended-targets/--no-intended-targets",
                                          help="gim: use uns['intended_targets'] (the genes "
                                          "each genetic perturbation is aimed at) as a prior, "
                                          "and to predict knockouts never seen."),
    members: int = typer.Option(1, help="K ≥ 2: an ensemble of K such models (cp.Ensemble; "
                                "seeds seed … seed+K−1) on resamples of the cells, for "
                                "uncertainty and `causalpert design`."),
    subsample: float = typer.Option(None, help="With --members: fit each member on this share "
                                    "of each context's cells drawn without replacement (e.g. "
                                    "0.632) instead of a bootstrap resample."),
    workers: int = typer.Option(1, help="With --members: members fitted in parallel processes."),
) -> None:
    """Fit a model on cells and save it: `causalpert fit cells.h5ad --out my_model`
    (`--members 5`: an ensemble of 5)."""
    import time

    from .models import MODELS

    try:
        if model not in MODELS or model == "oracle":
            choices = sorted(m for m in MODELS if m != "oracle")
            raise ValueError(f"unknown model {model!r}; choose from {choices}")
        adata = _read_data(data, backed)
        if control is None:
            control = adata.uns.get("control", "control") if data in BUNDLED else "control"
        options = {}
        if model in ("gim", "free-causal"):
            options["causal"] = causal
        if steps is not None and model in ("gim", "free-causal", "mlp"):
            options["steps"] = steps
        if model == "gim":
            options["device"] = device
            options["activity"] = activity
            if refit_steps is not None:
                options["refit_steps"] = refit_steps
            if reselect_steps:
                options["reselect_steps"] = reselect_steps
        if members < 1:
            raise ValueError(f"--members must be ≥ 1 (the number of models), got {members}")
        if members == 1 and (subsample is not None or workers != 1):
            raise ValueError("--subsample and --workers are for ensembles: add --members K "
                             "(K ≥ 2)")
        m = MODELS[model](seed=seed, **options)
        if members > 1:
            from .models import Ensemble

            if backed:
                raise ValueError("an ensemble resamples cells in memory: drop --backed "
                                 "(or fit one model with --members 1)")
            m = Ensemble(m, n=members, subsample=subsample, workers=workers)
        t0 = time.perf_counter()
        m.fit(adata, perturbation_key=perturbation_key,
              dose_key=None if dose_key.lower() == "none" else dose_key, control=control,
              intended_targets=None if intended_targets else {})
        seconds = time.perf_counter() - t0
        m.save(out)
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        _fail(exc)
    what = model if members == 1 else f"an ensemble of {members} × {model}"
    console.print(f"fitted {what} on {adata.n_obs:,} cells × {adata.n_vars} genes "
                  f"({len(m.feature_table_)} perturbations) in {seconds:.1f} s; wrote {out}")


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="A model directory written by `causalpert fit`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad of predicted cells."),
    perturbation: list[str] = typer.Option(None, help="Perturbation name (repeatable): one seen "
                                           "in fit, 'A+B' for a combination, or (gim with "
                                           "intended targets) a modelled gene to knock out."),
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
        with atomic_path(out) as tmp:
            pred.write_h5ad(tmp)
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    console.print(f"wrote {out}: {pred.n_obs:,} predicted cells × {pred.n_vars} genes")


@app.command()
def targets(
    model_dir: Path = typer.Argument(..., help="A model directory written by `causalpert fit`."),
    top: int = typer.Option(3, help="Genes shown per perturbation."),
    perturbation: list[str] = typer.Option(None, help="Only these perturbations (repeatable)."),
    out: Path = typer.Option(None, help="Also write the full perturbation × gene table of "
                             "target probabilities (CSV)."),
) -> None:
    """Each perturbation's most likely target genes, ordered by their target score (GIM: π for
    the genes it selected, then the others by their KDS evidence, `GIM.target_scores`), with
    GIM's target probability π beside it."""
    try:
        m = _load_model(model_dir)
        if not m.has_target_scores:
            raise ValueError(f"the {m.name} model gives no target scores: fit gim, de, "
                             "free-causal or additive")
        probs = m.target_probabilities(perturbation or None)
        order = m.target_scores(perturbation or None)
        if out is not None:
            with atomic_write(out) as fh:
                fh.write(probs.to_csv())
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    # rows in the order of the score; π only where it is another number (GIM)
    with_pi = not probs.equals(order)
    table = Table(title=f"most likely targets ({m.name}), best first by score")
    for col in ("perturbation", "rank", "gene", "score", *(["π (probability)"] * with_pi)):
        table.add_column(col, justify="left" if col in ("perturbation", "gene") else "right")
    for name, row in order.iterrows():
        best = row.sort_values(ascending=False, kind="stable").index[:top]
        for i, g in enumerate(best):
            pi = [f"{probs.loc[name, g]:.3f}"] if with_pi else []
            table.add_row(str(name) if i == 0 else "", str(i + 1), str(g), f"{row[g]:.3f}", *pi)
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
            with atomic_write(out) as fh:
                fh.write(G.to_csv())
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


@app.command()
def benchmark(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for results.csv, "
                             "results.json and summary.csv."),
    protocol: str = typer.Option("paper-synthetic", help="Benchmark protocol: paper-synthetic "
                                 "(simulated, known truth), activity-synthetic (half the drugs "
                                 "inhibit activity), sachs (bundled flow cytometry), "
                                 "papalexi2021 (bundled CRISPR knockouts), norman2019 (bundled "
                                 "CRISPR activation pairs), sciplex3 (your file, --data) or "
                                 "design (experimental design: the ensemble's acquisition vs "
                                 "random vs k-center over rounds; takes --sim, --seeds, "
                                 "--members, --steps, --strategies, --fresh; --methods does "
                                 "not apply)."),
    sim: str = typer.Option("linear", help="Ground truth for synthetic protocols: linear or mlp."),
    methods: str = typer.Option("gim,mlp,additive,free-causal,de,control,oracle",
                                help="Comma-separated methods. Variants of gim: gim-activity, "
                                "gim-mlp, gim-norefit, gim-uncalibrated, gim-joint, gim-exact, "
                                "gim-joint-mlphead, gim-vstat, gim-ensemble (3 bootstrap "
                                "members), gim-subbag (3 members on 63.2 % subsamples), "
                                "gim-reselect (targets re-selected after the refit). "
                                "mean-ko: control + the average training shift (the "
                                "yardstick of an unseen knockout)."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    workers: int = typer.Option(1, help="Parallel worker processes (each uses one thread)."),
    executor: str = typer.Option("local", help="local (this process or --workers processes) "
                                 "or ray (one Ray task per fit; needs pip install ray)."),
    address: str = typer.Option(None, help="Ray cluster address (--executor ray; default: "
                                "start a local Ray instance)."),
    data: Path = typer.Option(None, help="Your sciplex3 h5ad file (--protocol sciplex3)."),
    cell_line: str = typer.Option("A549", help="Cell line of a sciplex3 run."),
    fresh: bool = typer.Option(False, "--fresh", help="Rerun every job: delete the job files "
                               "an earlier run left in OUT/jobs (they are reused when their "
                               "protocol, sim, method, seed, overrides, data and causalpert "
                               "version match; code changes are not detected)."),
    members: int = typer.Option(3, help="--protocol design: ensemble members K ≥ 2."),
    steps: int = typer.Option(None, help="--protocol design: cap GIM at N steps and N // 3 "
                              "refit steps (default: GIM's 3,000 + 1,000)."),
    strategies: str = typer.Option(None, help="--protocol design: comma-separated "
                                   "strategies (default: acquisition,random,kcenter; with "
                                   "--pool knockouts acquisition,random,random-1,random-2); "
                                   "ablations of the acquisition: "
                                   "acquisition-means, acquisition-nodensity, "
                                   "acquisition-cells; further random draws: random-1 … "
                                   "random-4 (their mean with random: row random-mean)."),
    pool: str = typer.Option("drugs", help="--protocol design: the candidate experiments: "
                             "drugs (paper-synthetic's 40 training drugs at 4 doses) or "
                             "knockouts (knockout-screen: 30 of 40 genes to knock out, rounds "
                             "of 4; no kcenter)."),
) -> None:
    """Fit and score methods on a protocol; print the summary (mean ± sd over seeds). Each
    finished (method, seed) is saved in OUT/jobs, so the same command after an interruption
    runs only the jobs that did not finish. --protocol design runs the experimental-design
    benchmark instead: results.csv, summary.csv (area under each curve, mean ± sd over seeds)
    and design_curves.png."""
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        _fail(ValueError(f"--seeds must be comma-separated integers, got {seeds!r}"))
    if protocol == "design":
        _design_benchmark(out=out, sim=sim, seeds=seed_list, members=members, steps=steps,
                          fresh=fresh, pool=pool,
                          strategies=None if strategies is None else
                          [x.strip() for x in strategies.split(",") if x.strip()])
        return
    _benchmark_and_print(f"{protocol} ({sim}), seeds {seeds} — mean ± sd over seeds",
                         protocol=protocol, sim=sim, seeds=seed_list, out=out, workers=workers,
                         executor=executor, address=address, data=data, cell_line=cell_line,
                         fresh=fresh, methods=[m.strip() for m in methods.split(",") if m.strip()])


@app.command()
def design(
    model_dir: Path = typer.Argument(..., help="An ensemble directory: `causalpert fit DATA "
                                     "--members 5 --out DIR`, or cp.Ensemble(cp.GIM(...), "
                                     "n=5).fit(adata).save(DIR) in Python. Its members' "
                                     "disagreement is what ranks the experiments."),
    candidates: Path = typer.Option(..., "--candidates", "-c", help="What to try: a text file "
                                     "of perturbation names, one per line (seen in fit, 'A+B' "
                                     "for a pair, or a modelled gene to knock out); a CSV of "
                                     "features (first column: the name, then one column per "
                                     "model feature) for new compounds; or a CSV with a "
                                     "'smiles' column (and a 'name' column)."),
    top: int = typer.Option(8, "--top", "-k", help="How many experiments to pick (the batch)."),
    doses: str = typer.Option("1", help="Comma-separated doses to try each candidate at, e.g. "
                              "0.5,1,2 (each candidate × dose is one experiment)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the full ranking of every "
                             "experiment (CSV)."),
    seed: int = typer.Option(0, help="Prediction seed: the same seed gives the same ranking."),
    n_cells: int = typer.Option(200, help="Cells each member predicts per experiment."),
    diversity: float = typer.Option(1.0, help="Near-duplicate penalty λ in [0, 1]: 1 discounts "
                                    "an experiment whose predicted shift points the way of "
                                    "one already picked; 0 ranks by disagreement alone."),
    density: float = typer.Option(1.0, help="Information density β ≥ 0: the disagreement is "
                                  "weighted by how typical the experiment's predicted shift is "
                                  "of all candidates' (ρ^β), so outliers need more of it; 0 "
                                  "switches it off."),
    edges: float = typer.Option(1.0, help="Weight γ ≥ 0 of the edge term: experiments that hit "
                                "genes whose out-edges the members disagree on and that few "
                                "training perturbations hit score higher; 0 ranks by the "
                                "cells' disagreement alone."),
) -> None:
    """Rank the experiments to run next: those the ensemble's members disagree about most
    (the mean energy distance between the members' predicted cells, plus how much of the
    members' spread over the out-edges of the genes each experiment hits it would remove),
    picking a batch of
    --top that are not near-duplicates. For each: the score, the genes whose predicted mean
    the members disagree on most, and the members' spread over the targets (target sd)."""
    from .design import rank, read_candidates
    from .models import Ensemble

    try:
        try:
            dose_list = [float(x) for x in doses.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--doses must be comma-separated numbers, e.g. 0.5,1,2, got "
                             f"{doses!r}") from None
        m = _load_model(model_dir)
        if not isinstance(m, Ensemble):
            raise ValueError(f"{model_dir} holds a single {m.name} model, not an ensemble: "
                             "design ranks experiments by the members' disagreement; fit "
                             "one with `causalpert fit DATA --members 5 --out DIR`")
        cand = read_candidates(candidates)
        ranked = rank(m, cand, doses=dose_list, k=top, n_cells=n_cells, seed=seed,
                      diversity=diversity, density=density, edges=edges)
        if out is not None:
            with atomic_write(out) as fh:
                fh.write(ranked.to_csv(index=False))
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    table = Table(title=f"next experiments: the {min(top, len(ranked))} of {len(ranked)} the "
                  f"{len(m.members_)} members disagree about most, near-duplicates discounted")
    for col in ("rank", "candidate", "dose", "score", "batch score", "what drives it"):
        table.add_column(col, justify="left" if col in ("candidate", "what drives it")
                         else "right")
    for _, r in ranked[ranked["selected"]].iterrows():
        sd = "" if r["target_sd"] != r["target_sd"] else f"; target sd {r['target_sd']:.2f}"
        like = (f"; closest pick {r['similar_to']} (cos {r['similarity']:.2f})"
                if r["similar_to"] else "")
        table.add_row(str(r["rank"]), str(r["candidate"]), f"{r['dose']:g}",
                      f"{r['score']:.3f}", f"{r['batch_score']:.3f}",
                      f"genes {r['top_genes']} ({r['top_share']:.0%} of the mean spread "
                      f"{r['mean_spread']:.2f}){sd}{like}")
    console.print(table)
    console.print("score: mean energy distance between members' predicted cells; batch "
                  "score: score × (1 − λ·cosine to the most similar pick)"
                  + (f"; wrote {out}" if out is not None else ""))


peers_app = typer.Typer(help="The field's own tools (CellFlow, STATE, stadion), each in its "
                        "own virtual environment, as benchmark methods: install, then "
                        "`causalpert benchmark --methods gim,cellflow ...`.",
                        no_args_is_help=True)
app.add_typer(peers_app, name="peers")


@peers_app.command("install")
def peers_install(
    name: str = typer.Argument(..., help="Peer to install: cellflow, state or stadion."),
    force: bool = typer.Option(False, "--force", help="Reinstall even if it is ready."),
) -> None:
    """Create the peer's virtual environment from the pins shipped with causalpert (under
    $CAUSALPERT_PEERS_HOME, default ~/.cache/causalpert/peers); prints time and disk used.
    Minutes and 0.3–3 GB each (downloads from PyPI)."""
    from . import peers

    try:
        with console.status(f"installing peer {name} (a few minutes)"):
            info = peers.install(name, force=force, log=lambda msg: console.log(msg))
    except (ValueError, peers.PeerFailedError) as exc:
        _fail(exc)
    what = "installed" if info["fresh"] else "already installed (--force reinstalls)"
    console.print(f"{name} {what} in {info['path']}: {info['seconds']:.0f} s, "
                  f"{info['megabytes']:.0f} MB")


@peers_app.command("list")
def peers_list() -> None:
    """Each peer, whether it is installed, and where."""
    from . import peers

    table = Table(title=f"peers (home: {peers.peers_home()})")
    for col in ("peer", "status", "description"):
        table.add_column(col)
    for row in peers.status():
        table.add_row(row["peer"], row["status"], row["description"])
    console.print(table)


def _design_benchmark(**kwargs) -> None:
    """Run protocol ``design``, print the area under each curve per strategy, name the files."""
    from .benchmark.design_protocol import run_design

    try:
        _, summary = run_design(**kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    table = Table(title=f"design benchmark ({kwargs['sim']}, {kwargs['pool']}), seeds "
                  f"{','.join(map(str, kwargs['seeds']))}: area under the curve over rounds, "
                  "mean ± sd over seeds; margin = acquisition − strategy (paired by seed)")
    for col in ("metric", "strategy", "AUC", "margin"):
        table.add_column(col, justify="left" if col in ("metric", "strategy") else "right")
    for _, r in summary.sort_values(["metric", "strategy"]).iterrows():
        margin = ("" if r["margin_mean"] != r["margin_mean"]
                  else f"{r['margin_mean']:+.4g} ± {r['margin_sd']:.2g}")
        table.add_row(r["metric"], r["strategy"], f"{r['mean']:.4g} ± {r['sd']:.2g}", margin)
    console.print(table)
    out = kwargs["out"]
    console.print(f"wrote {out / 'results.csv'}, {out / 'summary.csv'}, "
                  f"{out / 'design_curves.png'}")


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
    return summary


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Directory written by `causalpert benchmark`."),
    markdown: bool = typer.Option(False, help="Print a markdown table instead."),
    html: bool = typer.Option(False, help="Also write RUN_DIR/report/index.html with bar "
                              "charts."),
) -> None:
    """Print the headline table (mean ± sd over seeds) of a finished benchmark run, the rank
    of each intended target where the protocol has them (sachs, papalexi2021) and per-context
    tables of held-out knockouts and pairs (papalexi2021, norman2019)."""
    import pandas as pd

    from .benchmark.report import (
        PER_CONTEXT,
        context_table,
        headline_table,
        markdown_table,
        target_rank_table,
    )

    path = run_dir / "summary.csv"
    if not path.is_file():
        _fail(FileNotFoundError(f"{path} not found: pass the --out directory of a benchmark run"))
    summary = pd.read_csv(path)
    table = headline_table(summary)
    results = run_dir / "results.csv"
    res = pd.read_csv(results) if results.is_file() else None
    extra = []  # (title, context × method table)
    if res is not None:
        ranks = target_rank_table(res)
        if ranks is not None:
            extra.append(("rank of each perturbation's intended target", ranks))
        many = res[res["split"] == "combo"]["context"].nunique() > 10
        for split, metric in PER_CONTEXT:
            if split == "combo" and many:
                continue  # paper-synthetic's 40 pairs: the headline mean says it
            t = context_table(res, split, metric)
            if t is not None:
                extra.append((f"{split} {metric} per context", t))
    if markdown:
        print(markdown_table(table))
        for title, t in extra:
            print(f"\n{title[0].upper()}{title[1:]} (mean over seeds):\n")
            print(markdown_table(t.astype(str)).replace("| method |", "| context |"))
    else:
        console.print(_rich_table(table, f"{summary['protocol'].iloc[0]}: mean ± sd over seeds"))
        for title, t in extra:
            console.print(_rich_table(t.astype(str), f"{title} (mean over seeds)",
                                      first="context"))
    if html:
        import matplotlib

        matplotlib.use("Agg")
        from .benchmark.html_report import summary_sections, write_report

        name = str(summary["protocol"].iloc[0])
        index = write_report(run_dir / "report", title=f"causalpert benchmark: {name}",
                             command=f"causalpert report {run_dir} --html",
                             sections=summary_sections(summary, name=name))
        err_console.print(f"wrote {index}")


def _rich_table(df, title: str, first: str = "method") -> Table:
    table = Table(title=title)
    table.add_column(first)
    for c in df.columns:
        table.add_column(str(c), justify="right")
    for name, row in df.iterrows():
        table.add_row(str(name), *[str(v) for v in row])
    return table


def main() -> None:  # pragma: no cover
    sys.exit(app())
