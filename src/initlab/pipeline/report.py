"""DVC stage ``report``: ``reports/claims.md``, ``reports/claims.json`` and ``reports/metrics.json``.

    python -m initlab.pipeline.report     # results/ + reports/figures.json -> reports/

Two sections (:mod:`initlab.pipeline.claims`): "Derivations and identities" (computed number
beside its closed form, verified / contradicted) and "Empirical claims" (n seeds, mean, 95%
interval, holds / fails / inconclusive); then the fair lr comparison and the figures. Every
output is a pure function of ``results/`` and ``params.yaml`` (no wall times, no paths of this
machine), so a rerun reproduces it byte for byte; stage wall times go to the untracked
``reports/timings.md``.
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initlab.pipeline import claims, tables
from initlab.pipeline.claims import Claim, fmt
from initlab.pipeline.common import load_params, read_csv, read_json, stage_parser, write_json
from initlab.pipeline.tables import Row
from initlab.pipeline.timed import TIMINGS



def load_inputs(results: Path) -> dict[str, Any]:
    """The tidy rows every claim reads (demo tables, the lr and depth studies)."""
    demo = {"rmt": ("rmt", "norms.csv"), "curvature": ("curvature", "blocks.csv"), "symmetry": ("symmetry", "trace.csv"),
            "deep_linear": ("deep_linear", "norms.csv"), "dead_relu": ("variance_flow", "dead_relu.csv"),
            "lr_stability": ("lr_stability", "runs.csv"), "edge_of_stability": ("edge_of_stability", "trace.csv")}
    study = {"lr_runs": "lr/runs.csv", "lr_at_init": "lr/at_init.csv", "theorem2": "lr/theorem2.csv", "depth_runs": "depth/runs.csv",
             "depth_at_init": "depth/at_init.csv", "lr_fairness": "lr_fairness.csv"}
    return ({key: tables.load_demo_csv(results, *where) for key, where in demo.items()}
            | {key: read_csv(results / "study" / name) for key, name in study.items()}
            | {key: tables.load_demo_json(results, key, "summary.json") for key in ("elbow", "canyon")})


SECTIONS = {claims.EMPIRICAL: (claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE), claims.IDENTITY: (claims.VERIFIED, claims.CONTRADICTED)}


def counts(claim_list: Sequence[Claim], section: str) -> dict[str, int]:
    """How many claims of ``section`` got each of its verdicts."""
    got = Counter(c.verdict for c in claim_list if c.section == section)
    return {v: got.get(v, 0) for v in SECTIONS[section]}


def metrics(claim_list: Sequence[Claim]) -> dict[str, Any]:
    """Headline numbers for ``dvc metrics show``: verdict counts of both sections (their verdict names differ:
    holds / fails / inconclusive are empirical, verified / contradicted identities), five short columns."""
    return counts(claim_list, claims.EMPIRICAL) | counts(claim_list, claims.IDENTITY)


def _cell(text: Any) -> str:
    return str(text if text is not None else "-").replace("|", "\\|").replace("\n", " ")


def _interval(c: Claim) -> str:
    iv = c.interval
    return f"{fmt(iv['mean'])} [{fmt(iv['low'])}, {fmt(iv['high'])}] ({iv['method']})"


def identity_table(claim_list: Sequence[Claim]) -> list[str]:
    lines = ["| # | statement | source | computed | closed form / expected | verdict | correction |", "|---|---|---|---|---|---|---|"]
    rows = [c for c in claim_list if c.section == claims.IDENTITY]
    return lines + [f"| {i} | {_cell(c.claim)} | {_cell(c.source)} | {_cell(c.measured)} | {_cell(c.expected)} | **{c.verdict}** | "
                    f"{_cell(c.correction)} |" for i, c in enumerate(rows, 1)]


def empirical_table(claim_list: Sequence[Claim]) -> list[str]:
    lines = ["| # | claim | source | quantity (one value per seed) | n | mean [95% CI] | region | verdict | correction |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [c for c in claim_list if c.section == claims.EMPIRICAL]
    return lines + [f"| {i} | {_cell(c.claim)} | {_cell(c.source)} | {_cell(c.measured)} | {c.interval['n']} | {_interval(c)} | "
                    f"{_cell(c.expected)} | **{c.verdict}** | {_cell(c.correction)} |" for i, c in enumerate(rows, 1)]


def fairness_table(fairness: Sequence[Row]) -> list[str]:
    lines = ["| init | optimizer | setting | lr | n | test loss [95% CI] | test acc [95% CI] |", "|---|---|---|---|---|---|---|"]
    return lines + [f"| {r['init']} | {r['optim']} | {r['setting']} | {fmt(r['lr'])} | {r['n']} | {fmt(r['test_loss_mean'])} "
                    f"[{fmt(r['test_loss_low'])}, {fmt(r['test_loss_high'])}] | {fmt(r['test_acc_mean'], 4)} "
                    f"[{fmt(r['test_acc_low'], 4)}, {fmt(r['test_acc_high'], 4)}] |"
                    for r in sorted(fairness, key=lambda r: (r["optim"], r["setting"], r["init"]))]


def render_markdown(claim_list: Sequence[Claim], fairness: Sequence[Row], figures: Sequence[dict], params: dict[str, Any],
                    curvature_samples: Sequence[int]) -> str:
    emp, ident = counts(claim_list, claims.EMPIRICAL), counts(claim_list, claims.IDENTITY)
    study, depth = params["study"], params["depth"]
    lines = [
        "# Claims of \"Revisiting Initialization of Neural Networks\" (Skorski), checked", "",
        f"Data `{params['data']}`, seeds {', '.join(map(str, params['seeds']))} (n = {len(params['seeds'])} per empirical claim), "
        f"model `conf/experiment/pipeline.yaml`; produced by `dvc repro` from `results/` and `params.yaml`.",
        f"Budget: lr study {study['steps']} steps of batch {study['batch_size']} per run, depth study {depth['steps']} steps; "
        f"lambda_max(H_0) of the lr study on {', '.join(map(str, curvature_samples))} training samples (dataset-level mean-loss Hessian), "
        f"of the depth figure on {depth['curvature_samples']} (first {depth['curvature_seeds']} seeds).", "",
        f"**Empirical claims: {sum(emp.values())} — {emp[claims.HOLDS]} hold, {emp[claims.FAILS]} fail, "
        f"{emp[claims.INCONCLUSIVE]} inconclusive.** Derivations and identities: {sum(ident.values())} — "
        f"{ident[claims.VERIFIED]} verified, {ident[claims.CONTRADICTED]} contradicted.", "",
        "## Empirical claims", "",
        "Each quantity has one value per seed; the verdict compares its 95% interval (t = Student t over seeds, "
        "bootstrap = percentile bootstrap over seeds) with the claim's region from `params.yaml`: holds inside, fails outside, "
        "inconclusive when it straddles a boundary.", "",
        *empirical_table(claim_list), "",
        "## Derivations and identities", "",
        "Exact or deterministic checks (no seed decides them): the computed number beside its closed form.", "",
        *identity_table(claim_list), "",
        "## Fair comparison of inits: test loss and accuracy per learning-rate setting", "",
        "`default`: the optimizer config's lr; `best_lr`: the grid lr with the lowest mean val loss "
        f"(grid {', '.join(f'{o}: ' + ', '.join(map(fmt, g)) for o, g in study['lr_grid'].items())}); "
        f"`curvature_lr`: lr = {fmt(study['curvature_c'])} / lambda_max(H_0) per seed (median lr shown). "
        "Intervals: 95% t over seeds. Table: `results/study/lr_fairness.csv`.", "",
        *fairness_table(fairness), "",
        "## Figures", "",
    ]
    for i, figure in enumerate(figures, 1):
        used_by = [c.id for c in claim_list if c.figure == figure["name"]]
        lines += [f"### Figure {i}: {figure['title']}", "", f"![{figure['title']}]({figure['file']})", "",
                  f"*{figure['caption']}*" + (f" Claims: {', '.join(used_by)}." if used_by else ""), ""]
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
    claim_list = claims.build(data, params["report"]["claims"])
    samples = sorted({r["samples"] for r in data["lr_at_init"]})
    write_json(out / "claims.json", {"claims": [c.to_dict() for c in claim_list], "lr_fairness": data["lr_fairness"]})
    write_json(out / "metrics.json", metrics(claim_list))
    figures = read_json(out / "figures.json")
    (out / "claims.md").write_text(render_markdown(claim_list, data["lr_fairness"], figures, params, samples) + "\n")
    for c in claim_list:
        print(f"{c.verdict:>12}  {c.id}: {fmt(c.value)}", flush=True)


if __name__ == "__main__":
    main()
