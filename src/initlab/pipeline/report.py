"""DVC stage ``report``: ``reports/claims.md``, ``reports/claims.json`` and ``reports/metrics.json``.

    python -m initlab.pipeline.report     # results/ + reports/figures.json -> reports/

Sections (:mod:`initlab.pipeline.claims`): the paper's empirical claims (n, mean, 95% interval, raw and
Holm-adjusted verdict, the smallest difference the design detects, robustness to alternative
protocols), its derivations (deterministic: computed number beside its closed form), then our own
questions (rows no source claims, outside the paper's tally), the protocol (comparators, margins with
their reasons, budgets), the fair lr comparison and the figures, whose captions cite the rows by
number. Every output is a pure function of ``results/`` and ``params.yaml`` (no wall times, no paths
of this machine), so a rerun reproduces it byte for byte; stage wall times go to the untracked
``reports/timings.md``.
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initlab.pipeline import claims, tables
from initlab.pipeline.claims import DERIVATION, EMPIRICAL, Claim, fmt
from initlab.pipeline.common import EXPERIMENT, compose_config, load_params, read_csv, read_json, stage_parser, write_json
from initlab.pipeline.tables import Row
from initlab.pipeline.timed import TIMINGS


def load_inputs(results: Path) -> dict[str, Any]:
    """The tidy rows every claim reads (demo tables, the lr and depth studies); ``lr_budgets`` (every budget) when written."""
    demo = {"rmt": ("rmt", "norms.csv"), "curvature": ("curvature", "blocks.csv"), "symmetry": ("symmetry", "trace.csv"),
            "deep_linear": ("deep_linear", "norms.csv"), "dead_relu": ("variance_flow", "dead_relu.csv"),
            "lr_stability": ("lr_stability", "runs.csv"), "edge_of_stability": ("edge_of_stability", "trace.csv")}
    study = {"lr_runs": "lr/runs.csv", "lr_at_init": "lr/at_init.csv", "theorem2": "lr/theorem2.csv", "depth_runs": "depth/runs.csv",
             "depth_at_init": "depth/at_init.csv", "lr_fairness": "lr_fairness.csv"}
    budgets = results / "study" / "lr" / "budgets.csv"
    canyon = canyon_runs(results)
    return ({key: tables.load_demo_csv(results, *where) for key, where in demo.items()}
            | {key: read_csv(results / "study" / name) for key, name in study.items()}
            | {"lr_budgets": read_csv(budgets) if budgets.exists() else [], "elbow": tables.load_demo_json(results, "elbow", "summary.json"),
               "canyon": canyon[0], "canyon_runs": canyon})


def canyon_runs(results: Path) -> list[dict[str, Any]]:
    """The canyon demo's summaries: one per seed when it runs per seed, else its single one."""
    single = tables.demo_file(results, "canyon", "summary.json")
    runs = sorted(single.parent.glob("seed-*/summary.json"), key=lambda p: int(p.parent.name.removeprefix("seed-")))
    return [read_json(p) for p in runs] if runs else [read_json(single)]


def lr_study_activation(data: str) -> str:
    """The activation of the lr study's model (``conf/experiment/pipeline.yaml``): it picks the pre-registered comparator."""
    return str(compose_config([f"data={data}", f"experiment={EXPERIMENT}"]).model.activation)


SECTIONS = {EMPIRICAL: (claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE), DERIVATION: (claims.VERIFIED, claims.CONTRADICTED)}


def counts(claim_list: Sequence[Claim], section: str, field: str = "verdict") -> dict[str, int]:
    """How many of the paper's claims (own questions excluded) of ``section`` got each verdict (``field``: verdict or adjusted)."""
    got = Counter(getattr(c, field) for c in claim_list if c.section == section and not c.own)
    return {v: got.get(v, 0) for v in SECTIONS[section]}


def metrics(claim_list: Sequence[Claim]) -> dict[str, Any]:
    """Headline numbers for ``dvc metrics show``: the paper's tally (empirical raw and Holm-adjusted, derivations) and how many
    of our own questions the report adds."""
    adjusted = {f"holm_{k}": v for k, v in counts(claim_list, EMPIRICAL, "adjusted").items()}
    return (counts(claim_list, EMPIRICAL) | adjusted | counts(claim_list, DERIVATION)
            | {"own_questions": sum(c.own for c in claim_list)})


def numbered(claim_list: Sequence[Claim]) -> dict[str, str]:
    """Row labels as the report prints them: E1.. (the paper's empirical claims), D1.. (its derivations), Q1.. (our own questions)."""
    labels, next_number = {}, Counter()
    for c in sorted(claim_list, key=lambda c: (c.own, c.section != EMPIRICAL)):  # the order the sections print them
        prefix = "Q" if c.own else ("E" if c.section == EMPIRICAL else "D")
        next_number[prefix] += 1
        labels[c.id] = f"{prefix}{next_number[prefix]}"
    return labels


def _cell(text: Any) -> str:
    return str(text if text is not None else "-").replace("|", "\\|").replace("\n", " ")


def _interval(c: Claim) -> str:
    iv = c.interval
    extra = f"; {iv['resolution']}" if iv.get("resolution") else ""
    return f"{fmt(iv['mean'])} [{fmt(iv['low'])}, {fmt(iv['high'])}] ({iv['method']}{extra})"


def _source(c: Claim) -> str:
    return f"{c.source}: \"{c.quote}\""


def _holm(c: Claim) -> str:
    return f"{c.adjusted} (p = {fmt(c.p_adjusted, 2)})"


def empirical_table(rows: Sequence[Claim], labels: dict[str, str], with_source: bool = True) -> list[str]:
    head = ["#", "claim", *(["source"] if with_source else []), "quantity (one value per seed)", "n", "mean [95% CI]", "region",
            "verdict", "Holm-adjusted", "detectable at n", "robustness", "correction"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in rows:
        cells = [labels[c.id], _cell(c.claim), *([_cell(_source(c))] if with_source else []), _cell(c.measured), str(c.interval["n"]),
                 _cell(_interval(c)), _cell(c.expected), f"**{c.verdict}**", _holm(c), fmt(c.mdd, 2), _cell(c.robustness),
                 _cell(c.correction)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def derivation_table(rows: Sequence[Claim], labels: dict[str, str], with_source: bool = True) -> list[str]:
    head = ["#", "statement", *(["source"] if with_source else []), "computed", "closed form / expected", "verdict", "correction"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join([labels[c.id], _cell(c.claim), *([_cell(_source(c))] if with_source else []), _cell(c.measured),
                                        _cell(c.expected), f"**{c.verdict}**", _cell(c.correction)]) + " |" for c in rows]


def protocol_lines(claim_list: Sequence[Claim], specs: Sequence[dict], labels: dict[str, str], protocol: dict, activation: str) -> list[str]:
    """Comparators, robustness alternatives and every region's reason, as fixed in ``params.yaml`` before the data."""
    robust = protocol["robustness"]
    comparators = ", ".join(f"{a}: {i}" for a, i in protocol["comparators"].items())
    lines = [f"Comparators, paired by seed with spectral and fixed per activation: {comparators} (the lr study's model is {activation}). "
             "Every lr is chosen on val (mean val loss over seeds, or per seed where a row says so); test is read once, at the end.",
             f"Robustness alternatives: the other interval method ({', '.join(f'{a} -> {b}' for a, b in robust['interval'].items())}), "
             f"margin x{' / x'.join(map(fmt, robust['margin_factors']))} (rows with a margin), the other family's comparator "
             f"({', '.join(f'{a}: {i}' for a, i in robust['comparators'].items())}), every shorter budget, every second grid value "
             "(grid-valued rows), and each seed left out (n >= 3).", "",
             "| # | region | why this margin |", "|---|---|---|"]
    for c, spec in zip(claim_list, specs, strict=True):
        if c.section == EMPIRICAL:
            lines.append(f"| {labels[c.id]} | {_cell(c.expected)} | {_cell(spec.get('why'))} |")
    return lines


def budget_lines(params: dict[str, Any]) -> list[str]:
    """Every training budget of the pipeline, in one table (from ``params.yaml``)."""
    study, depth = params["study"], params["depth"]
    lines = ["| stage | budgets | batch | what |", "|---|---|---|---|"]
    for name, section, what in (("lr study", study, "verdicts at the longest budget; shorter ones in the robustness column"),
                                ("depth study", depth, "train loss after the longest budget, lr chosen on val over all seeds")):
        budget = (f"{', '.join(map(fmt, section['budgets']))} epochs" if "budgets" in section else f"{section['steps']} steps")
        lines.append(f"| {name} | {budget} | {section['batch_size']} | {what} |")
    for name, section in params.get("data_demos", {}).items():
        if "steps" in section:
            lines.append(f"| {name} demo | {section['steps']} steps | {section.get('num_samples', section.get('batch_size', 'full'))} "
                         "samples (full batch where no batch size) | |")
    return lines


def fairness_table(fairness: Sequence[Row]) -> list[str]:
    """Test loss and accuracy per init, optimizer and lr setting, at the longest budget when the table has budgets."""
    rows, _ = claims.training_rows({"lr_runs": fairness}, {})
    lines = ["| init | optimizer | setting | lr | n | test loss [95% CI] | test acc [95% CI] |", "|---|---|---|---|---|---|---|"]
    return lines + [f"| {r['init']} | {r['optim']} | {r['setting']} | {fmt(r['lr'])} | {r['n']} | {fmt(r['test_loss_mean'])} "
                    f"[{fmt(r['test_loss_low'])}, {fmt(r['test_loss_high'])}] | {fmt(r['test_acc_mean'], 4)} "
                    f"[{fmt(r['test_acc_low'], 4)}, {fmt(r['test_acc_high'], 4)}] |"
                    for r in sorted(rows, key=lambda r: (r["optim"], r["setting"], r["init"]))]


def render_markdown(claim_list: Sequence[Claim], fairness: Sequence[Row], figures: Sequence[dict], params: dict[str, Any],
                    curvature_samples: Sequence[int], activation: str) -> str:
    protocol = params["report"]
    labels = numbered(claim_list)
    emp, holm_counts, der = counts(claim_list, EMPIRICAL), counts(claim_list, EMPIRICAL, "adjusted"), counts(claim_list, DERIVATION)
    paper_emp = [c for c in claim_list if c.section == EMPIRICAL and not c.own]
    paper_der = [c for c in claim_list if c.section == DERIVATION and not c.own]
    own = [c for c in claim_list if c.own]
    family = sum(c.section == EMPIRICAL for c in claim_list)
    lines = [
        "# Claims of \"Revisiting Initialization of Neural Networks\" (Skorski), checked", "",
        f"Data `{params['data']}`, seeds {', '.join(map(str, params['seeds']))} (n = {len(params['seeds'])} per seed-level claim), "
        f"model `conf/experiment/pipeline.yaml` ({activation}); produced by `dvc repro` from `results/` and `params.yaml`. "
        f"lambda_max(H_0) of the lr study on {', '.join(map(str, curvature_samples))} training samples (dataset-level mean-loss Hessian).", "",
        f"**The paper's claims, each quoted from its source: {sum(emp.values())} empirical — {emp[claims.HOLDS]} hold, "
        f"{emp[claims.FAILS]} fail, {emp[claims.INCONCLUSIVE]} inconclusive (Holm-adjusted: {holm_counts[claims.HOLDS]} hold, "
        f"{holm_counts[claims.FAILS]} fail, {holm_counts[claims.INCONCLUSIVE]} inconclusive); {sum(der.values())} derivations — "
        f"{der[claims.VERIFIED]} verified, {der[claims.CONTRADICTED]} contradicted.** Our own questions (no source makes these "
        f"claims; outside the tally): {len(own)}.", "",
        "## Empirical claims", "",
        "Each quantity has one value per seed (per draw where a row says so); the verdict compares its 95% interval (t = Student t "
        "over seeds, bootstrap = percentile bootstrap over seeds, DKW = Dvoretzky-Kiefer-Wolfowitz bound over samples) with the "
        "region fixed in `params.yaml`: holds inside, fails outside, inconclusive when it straddles a boundary. A grid-valued "
        "quantity carries its resolution and its interval spans it. *Holm-adjusted*: the verdict with the family-wise error "
        f"controlled at 5% over all {family} empirical rows of this report (own questions included); p is the adjusted p-value "
        "of the verdict's decision (interval inversion). *Detectable at n*: the distance between the mean and a region bound "
        "that this many seeds show with 80% power (noncentral t, the observed std; never finer than a grid's resolution). *Robustness*: the verdict recomputed under "
        "alternative protocols (see Protocol); `robust` when all agree, else the choices that flip it.", "",
        *empirical_table(paper_emp, labels), "",
        "## Derivations", "",
        "Deterministic checks (no seed, draw or grid decides them): the computed number beside its closed form; a provable bound "
        "is verified with its looseness.", "",
        *derivation_table(paper_der, labels), "",
        "## Our own questions (not claims of the sources)", "",
        "Questions a reader of the paper asks that no quoted source answers; same protocol, outside the paper's tally "
        "(their empirical rows are in the Holm family).", "",
        *empirical_table([c for c in own if c.section == EMPIRICAL], labels, with_source=False), "",
        *derivation_table([c for c in own if c.section == DERIVATION], labels, with_source=False), "",
        "## Protocol", "",
        *protocol_lines(claim_list, protocol["claims"], labels, protocol, activation), "",
        "Budgets:", "",
        *budget_lines(params), "",
        "## Fair comparison of inits: test loss and accuracy per learning-rate setting", "",
        "`default`: the optimizer config's lr; `best_lr`: the grid lr with the lowest mean val loss "
        f"(grid {', '.join(f'{o}: ' + ', '.join(map(fmt, g)) for o, g in params['study']['lr_grid'].items())}); "
        f"`curvature_lr`: lr = {fmt(params['study']['curvature_c'])} / lambda_max(H_0) per seed (median lr shown). "
        "Intervals: 95% t over seeds. Table: `results/study/lr_fairness.csv`.", "",
        *fairness_table(fairness), "",
        "## Figures", "",
    ]
    for i, figure in enumerate(figures, 1):
        rows = [labels[c.id] for c in claim_list if c.figure == figure["name"]]
        lines += [f"### Figure {i}: {figure['title']}", "", f"![{figure['title']}]({figure['file']})", "",
                  f"*{figure['caption']}*" + (f" Rows: {', '.join(rows)}." if rows else ""), ""]
    lines += ["---", "", f"Wall time of every stage: `{TIMINGS}` (untracked, rewritten by each stage as it finishes; "
              "tracked outputs stay byte-identical across reruns, so they cannot hold times)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="reports", help="report folder (default: reports)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    out = Path(args.out)
    data = load_inputs(Path(args.results))
    activation = lr_study_activation(params["data"])
    claim_list = claims.build(data, params["report"], activation)
    samples = sorted({r["samples"] for r in data["lr_at_init"]})
    labels = numbered(claim_list)
    write_json(out / "claims.json", {"claims": [c.to_dict() | {"row": labels[c.id]} for c in claim_list], "lr_fairness": data["lr_fairness"]})
    write_json(out / "metrics.json", metrics(claim_list))
    figures = read_json(out / "figures.json")
    (out / "claims.md").write_text(render_markdown(claim_list, data["lr_fairness"], figures, params, samples, activation) + "\n")
    for c in claim_list:
        print(f"{labels[c.id]:>4} {c.verdict:>12} {c.adjusted or '':>12}  {c.id}: {fmt(c.value)}  {c.robustness or ''}", flush=True)


if __name__ == "__main__":
    main()
