"""DVC stage ``report``: ``reports/claims.md``, ``reports/claims.json`` and ``reports/metrics.json``.

    python -m initlab.pipeline.report     # results/ + reports/figures.json -> reports/

One row per claim (:mod:`initlab.pipeline.claims`): the claim, its source, the measured values,
the expectation, a verdict and the corrected statement where the source is wrong; then the
training outcome per init x optimizer and every figure with its caption. ``metrics.json`` holds
the headline numbers for ``dvc metrics show`` / ``dvc metrics diff``.
"""

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initlab.pipeline import analysis_tables, claims, tables
from initlab.pipeline.claims import Claim, fmt
from initlab.pipeline.common import load_params, read_json, stage_parser, write_json
from initlab.pipeline.tables import Row


def build_claims(results: Path, params: dict[str, Any]) -> tuple[list[Claim], list[Row], dict[str, Any]]:
    """Every claim from the stages' outputs; also the training outcome table and extra headline numbers."""
    tol = params["report"]
    inits, optimizers, seeds = params["inits"], params["optimizers"], params["seeds"]
    runs = tables.load_training_runs(results / "train", inits, optimizers, seeds)
    outcome = tables.outcome_table(runs)
    init_layers = analysis_tables.load_layer_rows(results / "init_analysis", inits, seeds)
    trained_layers = analysis_tables.load_trained_layer_rows(results / "trained_analysis", inits, optimizers, seeds[0])
    rmt = tables.load_demo_csv(results, "rmt", "norms.csv")
    flow = tables.load_demo_csv(results, "variance_flow", "layers.csv")
    blocks = tables.load_demo_csv(results, "curvature", "blocks.csv")
    stability = tables.load_demo_json(results, "lr_stability", "summary.json")
    canyon = tables.load_demo_json(results, "canyon", "summary.json")
    gn_main = [{**r, "state": "at init"} for r in init_layers] + [{**r, "state": "after training"} for r in trained_layers]
    activation = runs[0]["config"]["model"]["activation"]
    claim_list = [
        claims.rmt_norm(rmt, tol["rmt_rel_tol"]),
        claims.rmt_unit_variance_typo(rmt),
        claims.spectral_jacobian(init_layers, flow, tol["jacobian_rel_tol"], activation),
        claims.sigma_ratio(tables.init_sigma_ratios(runs)),
        claims.relu_gauss_newton(blocks, tol["exact_rel_tol"]),
        claims.smooth_gauss_newton(blocks, tol["gn_near_rel_tol"], gn_main),
        claims.theorem2(init_layers),
        claims.init_controls_hessian(init_layers),
        claims.gamma_star(stability["inits"]),
        claims.edge_of_stability(tables.load_demo_csv(results, "edge_of_stability", "trace.csv")),
        claims.symmetry(tables.load_demo_csv(results, "symmetry", "trace.csv")),
        claims.deep_linear_powers(tables.load_demo_csv(results, "deep_linear", "norms.csv"), tol["exact_rel_tol"]),
        claims.xavier_relu(flow),
        claims.spectral_variance_flow(flow),
        claims.cauchy_elbow(tables.load_demo_json(results, "elbow", "summary.json"), tol["ks_max"]),
        claims.dead_relus(tables.load_demo_csv(results, "variance_flow", "dead_relu.csv")),
        claims.momentum_canyon(canyon),
        claims.terminal_velocity(canyon["terminal_velocity"]),
        claims.adam_robust(outcome),
        claims.training_outcome(outcome, tol["acc_tol"]),
    ]
    globals_ = analysis_tables.load_global_rows(results, inits, optimizers, seeds)
    lambda_at_init = {init: tables.mean_std(r["lambda_max"] for r in globals_ if r["state"] == "init" and r["init"] == init)[0]
                      for init in inits}
    extra = {"lambda_max_at_init": lambda_at_init,
             "lambda_max_after_training": {f"{r['init']}/{r['optim']}": r["lambda_max"] for r in globals_ if r["state"] == "trained"},
             "max_stable_lr_factor": {init: s["max_stable_factor"] for init, s in stability["inits"].items()}}
    return claim_list, outcome, extra


def metrics(claim_list: Sequence[Claim], outcome: Sequence[Row], extra: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers: verdict counts, each claim's value, test accuracy per init x optimizer."""
    counts = Counter(c.verdict for c in claim_list)
    return {
        "claims": {"total": len(claim_list), **{v: counts.get(v, 0) for v in (claims.HOLDS, claims.PARTIALLY, claims.FAILS)}},
        "values": {c.id: c.value for c in claim_list},
        "test_acc": {f"{r['init']}/{r['optim']}": r["test_acc"] for r in outcome},
        **extra,
    }


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(claim_list: Sequence[Claim], outcome: Sequence[Row], figures: Sequence[dict], params: dict[str, Any]) -> str:
    counts = Counter(c.verdict for c in claim_list)
    lines = [
        "# Claims of \"Revisiting Initialization of Neural Networks\" (Skorski), checked",
        "",
        f"Data `{params['data']}`, model `conf/experiment/pipeline.yaml`, inits {', '.join(params['inits'])}, "
        f"optimizers {', '.join(params['optimizers'])}, seeds {', '.join(map(str, params['seeds']))}; "
        "produced by `dvc repro` (numbers from `results/`, figures in `figures/`).",
        "",
        f"**{len(claim_list)} claims: {counts.get(claims.HOLDS, 0)} hold, {counts.get(claims.PARTIALLY, 0)} partially, "
        f"{counts.get(claims.FAILS, 0)} fail.**",
        "",
        "| # | claim | source | measured | expected | verdict | corrected statement |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(claim_list, 1):
        lines.append(f"| {i} | {_cell(c.claim)} | {_cell(c.source)} | {_cell(c.measured)} | {_cell(c.expected)} | "
                     f"**{c.verdict}** | {_cell(c.correction) or '-'} |")
    lines += ["", "## Training outcome per init x optimizer", "",
              "| init | optimizer | runs | done | diverged | failed | test acc (mean +- std) | test loss | final train loss |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in outcome:
        lines.append(f"| {r['init']} | {r['optim']} | {r['runs']} | {r['done']} | {r['diverged']} | {r['failed']} | "
                     f"{fmt(r['test_acc'], 4)} +- {fmt(r['test_acc_std'], 2)} | {fmt(r['test_loss'])} | {fmt(r['train_loss'])} |")
    lines += ["", "## Figures", ""]
    for i, figure in enumerate(figures, 1):
        used_by = [c.id for c in claim_list if c.figure == figure["name"]]
        lines += [f"### Figure {i}: {figure['title']}", "", f"![{figure['title']}]({figure['file']})", "",
                  f"*{figure['caption']}*" + (f" Claims: {', '.join(used_by)}." if used_by else ""), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="reports", help="report folder (default: reports)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    out = Path(args.out)
    claim_list, outcome, extra = build_claims(Path(args.results), params)
    figures = read_json(out / "figures.json")
    write_json(out / "claims.json", {"claims": [c.to_dict() for c in claim_list], "training_outcome": outcome})
    write_json(out / "metrics.json", metrics(claim_list, outcome, extra))
    (out / "claims.md").write_text(render_markdown(claim_list, outcome, figures, params) + "\n")
    for c in claim_list:
        print(f"{c.verdict:>9}  {c.id}: {fmt(c.value)}", flush=True)
    if any(isinstance(c.value, float) and math.isnan(c.value) for c in claim_list):
        print("report: some claims have no measured value", flush=True)


if __name__ == "__main__":
    main()
