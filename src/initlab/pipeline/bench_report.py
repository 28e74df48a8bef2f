"""DVC stage ``leaderboard`` (``bench/dvc.yaml``): every init's scorecard ranked against the reference.

    python -m initlab.pipeline.bench_report   # results/bench/inits/*.csv -> results/bench/leaderboard.csv,
                                              # reports/bench.md, reports/bench.png

Per activation and quantity (a quantity at one depth, optimizer, setting and budget): mean and 95%
Student-t interval over seeds (``initlab.stats``); a grid-valued quantity (:data:`GRIDS`: the safe GD
factor, the max stable lr) lies somewhere between its grid value and the next one up, so its interval
(``stats.bracketed_interval``) never claims more resolution than the grid. Each init's difference from
the activation's reference, paired by seed, with its two-sided p-value (``stats.region_p_values`` of the
region {0}),
Holm-adjusted (``stats.holm``) over every init x quantity of the activation. A verdict is
better / worse where the adjusted p <= ``alpha`` and the quantity has a direction (higher or lower is
better), higher / lower where it has none (curvature, gains: descriptive), no different otherwise.
The leaderboard orders the inits by the primary metric; an init whose paired difference from the
one above it has a 95% interval containing 0 shares its rank (``=``).
"""

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.pipeline.bench import AT_INIT, bench_file
from initlab.pipeline.common import load_params, read_csv, stage_parser, write_csv
from initlab.pipeline.grid_edges import next_grid_value
from initlab.stats import Interval, bracketed_interval, holm, region_p_values

Row = dict[str, Any]
Key = tuple  # (quantity, depth, optim, setting, epochs)
Sample = tuple[float, float]  # a seed's value and the high end of where its true value lies: [value, high]
Samples = dict[int, Sample]  # seed -> sample


@dataclass(frozen=True)
class Quantity:
    label: str
    direction: int  # +1 higher is better, -1 lower is better, 0 descriptive (no better / worse)
    digits: int = 3


QUANTITIES: dict[str, Quantity] = {
    "lambda_max": Quantity("lambda_max(H_0)", 0),
    "trace": Quantity("tr(H_0)", 0),
    "jacobian_norm_product": Quantity("prod ‖J^(k)‖", 0),
    "variance_gain": Quantity("Var gain / layer", 0),
    "dead_fraction": Quantity("dead units", -1),
    "safe_step_factor": Quantity("safe GD factor c", +1),
    "max_stable_sgd_lr": Quantity("max stable SGD lr", +1),
    "train_loss": Quantity("train loss", -1),
    "val_acc": Quantity("val acc", +1, 4),
    "test_acc": Quantity("test acc", +1, 4),
}
GRIDS: dict[str, Callable[[dict, Key], Sequence[float]]] = {  # grid-valued quantities: their grid (params.yaml bench)
    "safe_step_factor": lambda settings, key: settings["stability"]["factors"],  # the largest safe c of the scan
    "max_stable_sgd_lr": lambda settings, key: settings["lr_grid"][key[2]],  # the largest grid lr not diverged
}
VERDICTS = {(1, 1): "better", (1, -1): "worse", (-1, 1): "worse", (-1, -1): "better", (0, 1): "higher", (0, -1): "lower"}


def key_of(row: Row) -> Key:
    return tuple("" if row[k] is None else row[k] for k in ("quantity", "depth", "optim", "setting", "epochs"))


def key_label(key: Key) -> str:
    """'test acc, SGD best lr, 3 ep, depth 2' (at-init quantities: 'lambda_max(H_0), depth 2')."""
    name, depth, optim, setting, epochs = key
    where = "" if setting == AT_INIT else f", {optim} {setting.replace('_', ' ')}, {epochs:g} ep"
    return f"{QUANTITIES[name].label}{where}, depth {depth}"


def ends(value: float, grid: Sequence[float] | None) -> Sample:
    """Where a seed's true value lies: at ``value`` (no grid), or for a grid value from it up to the next grid value
    (inf past the grid's top; from 0 to the first grid value when none passed)."""
    return value, (value if grid is None or not math.isfinite(value) else next_grid_value(value, grid))


def per_seed(rows: Sequence[Row], settings: dict) -> dict[tuple, Samples]:
    """(activation, init, key) -> {seed: sample} (nan for a diverged run's value: dropped from every interval)."""
    table: dict[tuple, Samples] = {}
    for r in rows:
        value = r["value"] if isinstance(r["value"], float | int) and not isinstance(r["value"], bool) else math.nan
        key = key_of(r)
        grid = GRIDS[key[0]](settings, key) if key[0] in GRIDS else None
        table.setdefault((r["activation"], r["init"], key), {})[r["seed"]] = ends(float(value), grid)
    return table


def estimate(samples: Samples) -> Interval:
    """Mean and 95% t interval over seeds (for a grid-valued quantity: from the grid values' low end to the next grid
    values' high end)."""
    values, highs = zip(*samples.values(), strict=True) if samples else ((), ())
    return bracketed_interval(values, values, highs)


def difference(a: Samples, b: Samples) -> tuple[Interval, float]:
    """a - b paired by seed (the seeds both have): its interval (a grid value's ends: [a - b_high, a_high - b])
    and the two-sided p-value of 'differs from 0'."""
    seeds = sorted(a.keys() & b.keys())
    points = [a[s][0] - b[s][0] for s in seeds]
    lows, highs = [a[s][0] - b[s][1] for s in seeds], [a[s][1] - b[s][0] for s in seeds]
    iv = bracketed_interval(points, lows, highs)
    return iv, (region_p_values(lows, highs, 0.0, 0.0)[1] if iv.n >= 2 else 1.0)


def comparisons(values: dict[tuple, Samples], activation: str, reference: str, alpha: float) -> list[Row]:
    """Every init x quantity of ``activation`` against ``reference``: paired difference, raw and Holm p, verdict."""
    rows = []
    for (act, init, key), seeds in values.items():
        if act != activation or init == reference or (act, reference, key) not in values:
            continue
        iv, p = difference(seeds, values[(act, reference, key)])
        rows.append({"activation": act, "init": init, "key": key, "diff": iv, "p": p})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows]), strict=True):
        sign = 0 if adjusted > alpha else (1 if row["diff"].mean > 0 else -1)
        row |= {"p_holm": adjusted, "verdict": VERDICTS.get((QUANTITIES[row["key"][0]].direction, sign), "no different")}
    return rows


def primary_key(settings: dict) -> Key:
    """The primary metric's key: ``bench.primary`` at the first depth and the longest budget."""
    primary = settings["primary"]
    return (primary["quantity"], settings["depths"][0], primary["optim"], primary["setting"], max(settings["budgets"]))


def ranking(values: dict[tuple, Samples], activation: str, inits: Sequence[str], key: Key) -> list[tuple[str, str]]:
    """(rank, init) ordered by the primary metric's mean (best first); '=' marks an init tied with the one above
    (their paired difference's 95% interval contains 0), sharing its rank."""
    direction = QUANTITIES[key[0]].direction or 1
    means = {i: estimate(values.get((activation, i, key), {})).mean for i in inits}
    order = sorted(inits, key=lambda i: -direction * means[i] if math.isfinite(means[i]) else math.inf)
    ranks, rank = [], 0
    for k, init in enumerate(order):
        tied = k > 0 and _tied(values.get((activation, init, key), {}), values.get((activation, order[k - 1], key), {}))
        rank = rank if tied else k + 1
        ranks.append((f"{rank}=" if tied or (k + 1 < len(order) and _tied(
            values.get((activation, order[k + 1], key), {}), values.get((activation, init, key), {}))) else str(rank), init))
    return ranks


def _tied(a: Samples, b: Samples) -> bool:
    iv = difference(a, b)[0]
    return not (iv.low > 0 or iv.high < 0)


def cell(iv: Interval, digits: int) -> str:
    """'mean [low, high]' (n shown where it differs from the table's)."""
    if iv.n == 0:
        return "-- (n = 0)"
    return f"{iv.mean:.{digits}g} [{iv.low:.{digits}g}, {iv.high:.{digits}g}]"


def headline_keys(settings: dict) -> list[Key]:
    """The leaderboard's columns after the primary metric: curvature, stability, each optimizer's train loss, depth."""
    first, deepest, longest = settings["depths"][0], settings["depths"][-1], max(settings["budgets"])
    return [("lambda_max", first, "", AT_INIT, 0), ("safe_step_factor", first, "", AT_INIT, 0),
            ("max_stable_sgd_lr", first, "sgd", "grid", min(settings["budgets"])),
            *(("train_loss", first, optim, "best_lr", longest) for optim in settings["optimizers"]),
            ("train_loss", deepest, settings["depth_optim"], "best_lr", longest)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(map(str, r)) + " |" for r in rows)]


def activation_section(values: dict, compared: list[Row], activation: str, settings: dict, inits: Sequence[str]) -> list[str]:
    """One activation: the leaderboard table, then every quantity of every init with its verdict vs the reference."""
    reference, primary = settings["reference"][activation], primary_key(settings)
    verdict = {(r["init"], r["key"]): r for r in compared}
    keys = [primary, *headline_keys(settings)]
    interval_of = {(i, k): estimate(values.get((activation, i, k), {})) for i in inits for k in keys}
    counts = {n for (i, k), iv in interval_of.items() if (n := iv.n)}
    lines = [f"## {activation} (reference: {reference})", "",
             f"Ordered by {key_label(primary)}; mean [95% t interval] over n = {'-'.join(map(str, sorted({min(counts), max(counts)})))} "
             f"seeds (grid-valued columns, {' and '.join(QUANTITIES[q].label for q in GRIDS)}: from the grid value to the next "
             f"grid value up, where the true value lies; inf: past the grid's top); `=`: cannot be told apart from the init above (paired 95% interval of the difference contains 0). "
             f"vs {reference}: paired difference, Holm-adjusted verdict over all {len(compared)} comparisons of this activation.", ""]
    header = ["rank", "init", key_label(primary), f"vs {reference}", *(key_label(k) for k in keys[1:]), "better / worse / no different"]
    rows = []
    for rank, init in ranking(values, activation, inits, primary):
        mine = [r for r in compared if r["init"] == init]
        versus = "reference" if init == reference else _versus(verdict.get((init, primary)))
        tally = "reference" if init == reference else " / ".join(
            str(sum(r["verdict"] == v for r in mine)) for v in ("better", "worse", "no different"))
        rows.append([rank, f"**{init}**" if init == reference else init, cell(interval_of[(init, primary)], 4), versus,
                     *(cell(interval_of[(init, k)], QUANTITIES[k[0]].digits) for k in keys[1:]), tally])
    lines += markdown_table(header, rows)
    detail = [[init, key_label(r["key"]), r["diff"].n, cell(r["diff"], 3), f"{r['p_holm']:.3g}", r["verdict"]]
              for init in inits for r in compared if r["init"] == init]
    lines += ["", f"<details><summary>Every quantity of every init vs {reference} ({len(detail)} paired comparisons)</summary>", "",
              *markdown_table(["init", "quantity", "n", "difference [95% CI]", "Holm p", "verdict"], detail), "", "</details>", ""]
    return lines


def _versus(row: Row | None) -> str:
    return "--" if row is None else f"{row['diff'].mean:+.3g} [{row['diff'].low:+.3g}, {row['diff'].high:+.3g}] {row['verdict']}"


def report(values: dict, compared: dict[str, list[Row]], settings: dict, params: dict) -> str:
    inits = settings["inits"]
    lines = ["# initlab bench: every initializer against the baselines", "",
             f"{len(inits)} inits x {len(settings['activations'])} activations on `{params['data']}` "
             f"(MLPs of width {settings['width']}, depths {settings['depths']}), seeds {params['seeds']}, budgets "
             f"{settings['budgets']} epochs, optimizers {settings['optimizers']}; lrs chosen on val loss only, test only reported. "
             "Protocol: params.yaml `bench:`; every quantity per seed: `results/bench/inits/<init>.csv`; "
             "every interval and verdict: `results/bench/leaderboard.csv`. Figure: `reports/bench.png`.",
             "", "Quantities: at init lambda_max(H_0) and tr(H_0) (analysis engine; ReLU trace exact), prod ‖J^(k)‖ (layer "
             "Jacobian norms), per-layer forward variance gain, dead ReLU units (silent on every curvature sample); "
             "safe GD factor c: the largest c of the scan at which every full-batch GD step with lr = c / lambda_max(H_0) lowers "
             "the loss; max stable SGD lr: the largest grid lr not diverged within the first budget; train loss / val / test "
             "accuracy at the lr chosen on val (best lr) and at the optimizer's default lr.", ""]
    for activation in settings["activations"]:
        lines += activation_section(values, compared[activation], activation, settings, inits)
    return "\n".join(lines)


def leaderboard_rows(values: dict, compared: dict[str, list[Row]]) -> list[Row]:
    """Every interval and every comparison, one row per (activation, init, quantity)."""
    versus = {(r["activation"], r["init"], r["key"]): r for rows in compared.values() for r in rows}
    out = []
    for (activation, init, key), seeds in values.items():
        iv, vs = estimate(seeds), versus.get((activation, init, key))
        out.append({"activation": activation, "init": init, **dict(zip(("quantity", "depth", "optim", "setting", "epochs"), key)),
                    "n": iv.n, "mean": iv.mean, "low": iv.low, "high": iv.high}
                   | ({"diff_n": vs["diff"].n, "diff": vs["diff"].mean, "diff_low": vs["diff"].low, "diff_high": vs["diff"].high,
                       "p": vs["p"], "p_holm": vs["p_holm"], "verdict": vs["verdict"]} if vs else {}))
    return out


VERDICT_COLORS = {"better": "#009E73", "worse": "#D55E00", "no different": "#7F7F7F", "reference": "#000000"}


def figure(values: dict, compared: dict[str, list[Row]], settings: dict, params: dict):
    """Per activation (columns): the primary metric and lambda_max(H_0) per init, dot and 95% interval, inits in
    leaderboard order, coloured by the Holm verdict vs the reference on the primary metric."""
    from initlab.pipeline.style import finish, log_ticks, n_text, new_figure

    activations, inits, primary = settings["activations"], settings["inits"], primary_key(settings)
    curvature = ("lambda_max", settings["depths"][0], "", AT_INIT, 0)
    fig, axs = new_figure(2, len(activations), width=4.6, height=0.28 * len(inits) + 1.2)
    for col, activation in enumerate(activations):
        order = [init for _, init in ranking(values, activation, inits, primary)][::-1]  # best at the top
        verdict = {r["init"]: r["verdict"] for r in compared[activation] if r["key"] == primary}
        reference = settings["reference"][activation]
        for row, key in enumerate((primary, curvature)):
            ax = axs[row, col]
            for y, init in enumerate(order):
                iv = estimate(values.get((activation, init, key), {}))
                color = VERDICT_COLORS["reference" if init == reference else verdict.get(init, "no different")]
                ax.errorbar([iv.mean], [y], xerr=[[iv.mean - iv.low], [iv.high - iv.mean]] if iv.n > 1 else None,
                            fmt="o", color=color, markersize=4, capsize=2)
            ax.set_yticks(range(len(order)), order, fontsize=7)
            if key == curvature and ax.dataLim.x0 > 0:
                ax.set_xscale("log")
                log_ticks(ax.xaxis)  # plain numbers: '20', not '2x10^1' labels that run into each other
            ax.set_xlabel(key_label(key), fontsize=8)
            ax.set_title(f"{activation}: {'rank by ' if row == 0 else ''}{QUANTITIES[key[0]].label}", fontsize=9)
            ax.grid(alpha=0.3, axis="x")
    counts = [estimate(v).n for v in values.values()]
    title = (f"{len(inits)} inits on {params['data']} ranked by {key_label(primary)}, with lambda_max(H_0) at init "
             f"(references: {', '.join(a + ' ' + settings['reference'][a] for a in activations)})")
    caption = (f"Dots: means over {n_text(counts, 'seeds')}; bars: 95% t intervals. Colour: the Holm-adjusted verdict of the "
               f"paired difference from the reference on the top row's metric (green better, orange worse, grey no different, "
               f"black the reference). Inits in leaderboard order, best at the top.")
    return finish(fig, title, caption)


def main(argv: list[str] | None = None) -> None:
    from initlab.pipeline.style import save_figure

    parser = stage_parser(__doc__)
    parser.add_argument("--reports", default="reports", help="where bench.md and bench.png go (default: reports)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    settings = params["bench"]
    missing = [a for a in settings["activations"] if settings["reference"].get(a) not in settings["inits"]]
    if missing:
        print(f"initlab: bench.reference.{missing[0]} (params.yaml): got {settings['reference'].get(missing[0])!r}, "
              f"must be one of bench.inits", file=sys.stderr, flush=True)
        raise SystemExit(2)
    values = per_seed([row for init in settings["inits"] for row in read_csv(bench_file(args.results, init))], settings)
    compared = {a: comparisons(values, a, settings["reference"][a], settings["alpha"]) for a in settings["activations"]}
    write_csv(Path(args.results) / "bench" / "leaderboard.csv", leaderboard_rows(values, compared))
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench.md").write_text(report(values, compared, settings, params) + "\n")
    from initlab.pipeline.figure_checks import check_figure

    drawn = figure(values, compared, settings, params)
    save_figure(drawn, figure_path(args.reports))
    for defect in check_figure(drawn):  # after saving, as the figures stage does: new data may make labels collide
        print(f"bench: warning: bench.png: {defect}", file=sys.stderr, flush=True)


def figure_path(reports: str | Path) -> Path:
    return Path(reports) / "bench.png"


if __name__ == "__main__":
    main()
