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

import hashlib
import json
import math
import re
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
             "depth_at_init": "depth/at_init.csv", "depth_budgets": "depth/budgets.csv", "lr_fairness": "lr_fairness.csv"}
    budgets = results / "study" / "lr" / "budgets.csv"
    canyon = canyon_runs(results)
    return ({key: tables.load_demo_csv(results, *where) for key, where in demo.items()}
            | {key: read_csv(results / "study" / name) if (results / "study" / name).exists() else [] for key, name in study.items()}
            | {"lr_budgets": read_csv(budgets) if budgets.exists() else [], "elbow": tables.load_demo_json(results, "elbow", "summary.json"),
               "canyon": canyon[0], "canyon_runs": canyon, "canyon_draws": canyon_draws(results)})


def canyon_runs(results: Path) -> list[dict[str, Any]]:
    """The canyon demo's summaries: one per seed when it runs per seed, else its single one."""
    single = tables.demo_file(results, "canyon", "summary.json")
    runs = sorted(single.parent.glob("seed-*/summary.json"), key=lambda p: int(p.parent.name.removeprefix("seed-")))
    return [read_json(p) for p in runs] if runs else [read_json(single)]


def canyon_draws(results: Path) -> list[dict[str, Any]]:
    """The canyon demo's races from random starts (``draws.csv``); none where the demo wrote no draws."""
    path = tables.demo_file(results, "canyon", "draws.csv")
    return read_csv(path) if path.exists() else []


def lr_study_activation(data: str) -> str:
    """The activation of the lr study's model (``conf/experiment/pipeline.yaml``): it picks the pre-registered comparator."""
    return str(compose_config([f"data={data}", f"experiment={EXPERIMENT}"]).model.activation)


TALLY = (claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE, claims.TYPO)
SOURCES = ("paper", "book", "lecture notes")
EXECUTION_KEYS = frozenset({"device", "workers", "threads"})  # where and how fast a stage runs, never what it finds
OTHER_PROTOCOLS = frozenset({"bench"})  # initlab bench's own protocol (bench/dvc.yaml): it decides none of this report's verdicts
CHANGELOG = Path(__file__).resolve().parents[3] / "docs" / "methods.md"


# ---------------------------------------------------------------- the protocol: hash and changelog


def protocol_hash(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of every ``params.yaml`` section except the execution ones
    (:data:`EXECUTION_KEYS`) and the bench's (:data:`OTHER_PROTOCOLS`): the data, seeds, inits, studies, demos and the
    report's claims all decide verdicts."""
    protocol = {k: v for k, v in params.items() if k not in EXECUTION_KEYS | OTHER_PROTOCOLS}
    return hashlib.sha256(json.dumps(protocol, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()).hexdigest()


def changelog(text: str) -> list[dict[str, str]]:
    """The rows of the 'Protocol changelog' table of ``docs/methods.md``: version, change, seeds, hash, commit."""
    section = text.split("## Protocol changelog", 1)[1] if "## Protocol changelog" in text else ""
    lines = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("|")][2:]
    keys = ("version", "change", "seeds", "hash", "commit")
    return [dict(zip(keys, (c.strip().strip("`") for c in line.strip().strip("|").split("|")), strict=True)) for line in lines]


def _seeds(text: str) -> set[int]:
    return {int(s) for s in re.findall(r"\d+", text)}


def protocol_status(params: dict[str, Any], log: Sequence[dict[str, str]], data_seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """The current protocol's hash, its changelog row (None when params.yaml matches no version), the seeds the versions
    were designed on, the seeds the results hold (``data_seeds``; params' when not given), and whether they are
    confirmatory: a logged version frozen in a commit, results of exactly params' seeds, disjoint from every design seed."""
    digest = protocol_hash(params)
    row = next((r for r in log if r["hash"] == digest), None)
    designed = set().union(*(_seeds(r["seeds"]) for r in log)) if log else set()
    seeds = sorted(params["seeds"] if data_seeds is None else data_seeds)
    frozen = row is not None and row["commit"] not in ("", "-", "pending")
    return {"hash": digest, "row": row, "designed_on": sorted(designed), "seeds": seeds,
            "confirmatory": frozen and seeds == sorted(params["seeds"]) and not designed & set(seeds)}


def protocol_line(status: dict[str, Any]) -> str:
    row, short, seeds = status["row"], status["hash"][:16], status["seeds"]
    designed = ", ".join(map(str, status["designed_on"])) or "none"
    commit = row and row["commit"] not in ("", "-", "pending") and f"frozen in commit `{row['commit']}`"
    frozen = (f"protocol {row['version']} (sha256 `{short}`, {commit or 'not yet frozen in a commit'})" if row
              else f"a protocol that no version of the changelog logs (sha256 `{short}`)")
    kind = ("**confirmatory**: seeds never used while designing the protocol" if status["confirmatory"]
            else "**exploratory**: not the frozen protocol on fresh seeds")
    return (f"This report runs {frozen} on seeds {', '.join(map(str, seeds))}, {kind}. Seeds {designed} were exploratory: "
            "every protocol version was designed on them (docs/methods.md, Protocol changelog).")


# ---------------------------------------------------------------- tallies


def distinct_claims(claim_list: Sequence[Claim]) -> dict[tuple[str, str], list[Claim]]:
    """The sources' distinct claims: rows quoting the same passage of the same source are parts of one claim."""
    groups: dict[tuple[str, str], list[Claim]] = {}
    for c in claim_list:
        if not c.own:
            groups.setdefault((c.source_kind, c.quote), []).append(c)
    return groups


def claim_verdict(parts: Sequence[Claim]) -> str:
    """One distinct claim's verdict from its rows' decided verdicts: a typo stays a typo, else the rule 'every'."""
    decided = [c.decided for c in parts]
    return claims.TYPO if all(d == claims.TYPO for d in decided) else claims.RULES["every"][0]([d for d in decided if d != claims.TYPO])


def tally(claim_list: Sequence[Claim]) -> dict[str, dict[str, int]]:
    """Per source: how many distinct claims hold, fail, are inconclusive or are typos (each claim counted once)."""
    out = {source: dict.fromkeys(TALLY, 0) for source in SOURCES}
    for (source, _), parts in distinct_claims(claim_list).items():
        out[source][claim_verdict(parts)] += 1
    return out


def metrics(claim_list: Sequence[Claim]) -> dict[str, Any]:
    """Headline numbers for ``dvc metrics show`` (one row that fits a terminal): the paper's distinct claims by verdict
    (Holm-adjusted for empirical rows), the book's and the notes' claims and how many hold, the own questions; the full
    per-source tally is in ``claims.json``."""
    counted = tally(claim_list)
    paper = {f"paper_{verdict}": n for verdict, n in counted["paper"].items()}
    others = {f"{name}_{key}": value for name, source in (("book", "book"), ("notes", "lecture notes"))
              for key, value in (("claims", sum(counted[source].values())), ("holds", counted[source][claims.HOLDS]))}
    return paper | others | {"own_questions": sum(c.own for c in claim_list)}


def numbered(claim_list: Sequence[Claim]) -> dict[str, str]:
    """Row labels as the report prints them: E1.. (the sources' empirical rows), D1.. (their derivations), Q1.. (our own)."""
    labels, next_number = {}, Counter()
    for c in sorted(claim_list, key=lambda c: (c.own, c.section != EMPIRICAL)):  # the order the sections print them
        prefix = "Q" if c.own else ("E" if c.section == EMPIRICAL else "D")
        next_number[prefix] += 1
        labels[c.id] = f"{prefix}{next_number[prefix]}"
    return labels


# ---------------------------------------------------------------- cells


def _cell(text: Any) -> str:
    return str(text if text is not None else "-").replace("|", "\\|").replace("\n", " ")


def _end(value: float) -> str:
    return fmt(value) if math.isfinite(value) else "unbounded"


def _interval_text(iv: dict[str, Any] | None, with_n: bool = False) -> str:
    """mean [low, high] (method; resolution), 'no data' without values; an infinite end reads 'unbounded'."""
    if not iv or not iv["n"]:
        return "no data"
    if iv["n"] == 1 and iv["method"] in ("t", "bootstrap"):
        return f"{fmt(iv['mean'])} (one value: no interval)"
    extra = f"; {iv['resolution']}" if iv.get("resolution") else ""
    n = f", n = {iv['n']}" if with_n else ""
    return f"{fmt(iv['mean'])} [{_end(iv['low'])}, {_end(iv['high'])}] ({iv['method']}{extra}{n})"


def _detectable(mdd: float | None) -> str:
    """The smallest detectable difference; 'n/a' where too few values leave it undefined."""
    return fmt(mdd, 2) if mdd is not None and math.isfinite(mdd) else "n/a"


def _p(p: float | None) -> str:
    return "n/a" if p is None else (f"{fmt(p, 2)}" if p > 1e-300 else "< 1e-300")


def _holm(c: Claim) -> str:
    return f"{c.adjusted} (H1 {c.h1}; p = {_p(c.p_adjusted)})"


def _number(c: Claim) -> str:
    """The number a row turns on: its deciding interval (empirical) or its computed value beside the closed form."""
    if c.section == EMPIRICAL:
        return _interval_text(c.interval, with_n=True)
    return f"{fmt(c.value)}" + (f" (closed form {fmt(c.reference)})" if c.reference is not None else "")


# ---------------------------------------------------------------- tables


def tally_lines(claim_list: Sequence[Claim]) -> list[str]:
    lines = ["| source | distinct claims | hold | fail | inconclusive | typo (corrected) |", "|---|---|---|---|---|---|"]
    for source, row in tally(claim_list).items():
        lines.append(f"| {source} | {sum(row.values())} | " + " | ".join(str(row[v]) for v in TALLY) + " |")
    return lines


def summary_lines(claim_list: Sequence[Claim], labels: dict[str, str]) -> list[str]:
    """One line per distinct claim (then per own question): claim, source, verdict, the number it turns on, its rows."""
    lines = ["| # | claim | source | verdict | the number it turns on | rows |", "|---|---|---|---|---|---|"]
    groups = list(distinct_claims(claim_list).values()) + [[c] for c in sorted((c for c in claim_list if c.own), key=lambda c: int(labels[c.id][1:]))]
    for i, parts in enumerate(groups, 1):
        first, verdict = parts[0], claim_verdict(parts) if not parts[0].own else parts[0].decided
        deciding = next((c for c in parts if c.decided == verdict), first)
        label = f"C{i}" if not first.own else labels[first.id]
        numbers = "; ".join(f"{labels[c.id]}: {_number(c)}" for c in parts) if len(parts) > 1 else _number(deciding)
        lines.append(f"| {label} | {_cell(deciding.claim)} | {_cell(first.source or 'ours')} | **{verdict}** | {_cell(numbers)} | "
                     f"{', '.join(labels[c.id] for c in parts)} |")
    return lines


def quote_lines(claim_list: Sequence[Claim]) -> list[str]:
    """Each distinct claim's source passage, verbatim in a code span (no markdown or table escaping can alter it)."""
    return [f"- C{i}, {parts[0].source}: `{parts[0].quote}`" for i, parts in enumerate(distinct_claims(claim_list).values(), 1)]


def findings(claim_list: Sequence[Claim], labels: dict[str, str]) -> list[str]:
    """The practical findings in plain words: each row's ``finding`` for its verdict, and every row that is non-inferior
    but significantly worse."""
    out = [f"- {c.finding}" for c in claim_list if c.finding]
    out += [f"- {labels[c.id]} ({c.claim}): {c.note}." for c in claim_list if c.note and "significantly worse" in c.note]
    return out or ["- (none: no row's verdict carries a finding)"]


def empirical_table(rows: Sequence[Claim], labels: dict[str, str]) -> list[str]:
    head = ["#", "claim", "quantity (one value per seed)", "mean [95% CI] (n)", "region", "H1", "verdict", "Holm-adjusted",
            "detectable at n", "robustness (what a reader could choose)", "power only", "note / correction"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in rows:
        lines.append("| " + " | ".join([labels[c.id], _cell(c.claim), _cell(c.measured), _cell(_interval_text(c.interval, True)),
                                         _cell(c.expected), str(c.h1), f"**{c.verdict}**", _holm(c), _detectable(c.mdd), _cell(c.robustness),
                                         _cell(c.power), _cell("; ".join(filter(None, [c.note, c.correction])) or None)]) + " |")
        for k, sub in enumerate(c.sub_rows):
            lines.append("| " + " | ".join([f"{labels[c.id]}.{k + 1}", _cell(sub["label"]), _cell(sub["measured"]),
                                             _cell(_interval_text(sub["interval"], True)), _cell(sub["expected"]), "", sub["verdict"],
                                             "", "", "", "", _cell(sub["note"])]) + " |")
    return lines


def derivation_table(rows: Sequence[Claim], labels: dict[str, str]) -> list[str]:
    head = ["#", "statement", "source", "computed", "closed form / expected", "verdict", "correction"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join([labels[c.id], _cell(c.claim), _cell(c.source or "ours"), _cell(c.measured), _cell(c.expected),
                                        f"**{c.verdict}**", _cell(c.correction)]) + " |" for c in rows]


def protocol_lines(claim_list: Sequence[Claim], specs: Sequence[dict], labels: dict[str, str], protocol: dict, activation: str) -> list[str]:
    """Comparators, robustness alternatives and every region's reason, as fixed in ``params.yaml`` before the data."""
    robust = protocol["robustness"]
    comparators = ", ".join(f"{a}: {i}" for a, i in protocol["comparators"].items())
    lines = [f"Comparators, paired by seed with spectral and fixed per activation: {comparators} (the lr study's default model is "
             f"{activation}). Every lr is chosen on val (mean val loss over seeds, or per seed where a row says so); test is evaluated "
             "at every budget, never used to select.",
             f"Robustness (what a reader could have chosen): each other measurement a row names, margin "
             f"x{' / x'.join(map(fmt, robust['margin_factors']))} (rows with a margin), the other family's comparator "
             f"({', '.join(f'{a}: {i}' for a, i in robust['comparators'].items())}), the other optimizer "
             f"({', '.join(f'{a} -> {b}' for a, b in robust['optimizers'].items())}; rows {', '.join(robust['optimizer_checks'])}), "
             "every shorter budget, every second grid value (grid-valued rows), the selections the lr study flags on a grid edge left "
             f"out. Power only, reported apart: the other interval method ({', '.join(f'{a} -> {b}' for a, b in robust['interval'].items())}) "
             "and each seed left out (n >= 3).", "",
             "| # | region (deciding sub-row) | why this margin | measurements (why the primary) |", "|---|---|---|---|"]
    for c, spec in zip(claim_list, specs, strict=True):
        if c.section == EMPIRICAL:
            measures = "; ".join(f"{'**' + m + '** (primary)' if m == spec.get('measure') else m}: {why}"
                                 for m, why in spec.get("measures", {}).items())
            lines.append(f"| {labels[c.id]} | {_cell(c.expected)} | {_cell(spec.get('why'))} | {_cell(measures or None)} |")
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
    """Test loss and accuracy per activation (when the lr study has several), init, optimizer and lr setting, at the longest
    budget when the table has budgets."""
    rows, _ = claims.training_rows({"lr_runs": fairness}, {})
    lines = ["| activation | init | optimizer | setting | lr | n | test loss [95% CI] | test acc [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    return lines + [f"| {r.get('activation') or '-'} | {r['init']} | {r['optim']} | {r['setting']} | {fmt(r['lr'])} | {r['n']} | "
                    f"{_metric(r, 'test_loss', 3)} | {_metric(r, 'test_acc', 3)} |"
                    for r in sorted(rows, key=lambda r: (str(r.get("activation")), r["optim"], r["setting"], r["init"]))]


def _metric(row: Row, name: str, digits: int) -> str:
    """mean [low, high] of a fairness-table metric; 'no finished run' for n = 0 (no interval beside it)."""
    if not row.get("n"):
        return "no finished run"
    return f"{fmt(row[f'{name}_mean'], digits)} [{_end(row[f'{name}_low'])}, {_end(row[f'{name}_high'])}]"


def render_markdown(claim_list: Sequence[Claim], fairness: Sequence[Row], figures: Sequence[dict], params: dict[str, Any],
                    curvature_samples: Sequence[int], activation: str, status: dict[str, Any] | None = None) -> str:
    protocol = params["report"]
    status = status or protocol_status(params, [])
    labels = numbered(claim_list)
    paper_emp = [c for c in claim_list if c.section == EMPIRICAL and not c.own]
    paper_der = [c for c in claim_list if c.section == DERIVATION and not c.own]
    own = [c for c in claim_list if c.own]
    family = sum(c.section == EMPIRICAL for c in claim_list)
    lines = [
        "# Claims of \"Revisiting Initialization of Neural Networks\" (Skorski), the book's ch. 8 and the lecture notes, checked", "",
        protocol_line(status), "",
        f"Data `{params['data']}`, model `conf/experiment/pipeline.yaml` ({activation}; the lr study also trains ReLU where a row "
        "says so); produced by `dvc repro` from `results/` and `params.yaml`. lambda_max(H_0) of the lr study on "
        f"{', '.join(map(str, curvature_samples))} training samples.", "",
        "## Tally: each distinct claim once, per source", "",
        "A claim is one passage of its source, whatever number of inits, activations or states it is checked on (those are "
        "sub-rows; a claim holds when every sub-row and every row quoting the passage holds, fails when one fails). Empirical "
        "rows count with their Holm-adjusted verdict; a typo is a correction, not a fail; our own questions are outside the tally.", "",
        *tally_lines(claim_list), "",
        f"Our own questions (no source makes them): {len(own)}.", "",
        "## Summary", "",
        *summary_lines(claim_list, labels), "",
        "## Practical findings", "",
        *findings(claim_list, labels), "",
        "## Sources, quoted verbatim", "",
        *quote_lines(claim_list), "",
        "## Empirical rows of the sources", "",
        "Each quantity has one value per seed (per draw where a row says so); a sub-row holds when its 95% interval (t = Student t, "
        "bootstrap = percentile bootstrap over seeds, DKW = Dvoretzky-Kiefer-Wolfowitz band over samples) lies in the region "
        "fixed in `params.yaml` and the test backs it, fails when it lies outside, else inconclusive; where every value is equal "
        "the p-value is the exact sign-flip test (at least 1/2^n). A grid-valued quantity carries its resolution and its interval "
        "spans it. *H1*: the direction the row tests, fixed before the confirmatory seeds. *Holm-adjusted*: H1 at family-wise 5% "
        f"over all {family} empirical rows (own questions included), else inconclusive. *Detectable at n*: the distance between the "
        "mean and a region bound this many seeds show with 80% power. *Robustness*: the verdict recomputed under the alternatives "
        "a reader could have chosen; *power only*: the same under another interval method or one seed left out.", "",
        *empirical_table(paper_emp, labels), "",
        "## Derivations of the sources", "",
        "Deterministic checks (no seed, draw or grid decides them): the computed number beside its closed form.", "",
        *derivation_table(paper_der, labels), "",
        "## Our own questions (not claims of the sources)", "",
        "Questions a reader of the paper asks that no quoted source answers; same protocol, outside the tally (their empirical "
        "rows are in the Holm family).", "",
        *empirical_table([c for c in own if c.section == EMPIRICAL], labels), "",
        *derivation_table([c for c in own if c.section == DERIVATION], labels), "",
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
    parser.add_argument("--protocol-hash", action="store_true", help="print the protocol hash of params.yaml and exit")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    if args.protocol_hash:
        print(protocol_hash(params))
        return
    out = Path(args.out)
    data = load_inputs(Path(args.results))
    status = protocol_status(params, changelog(CHANGELOG.read_text()), sorted({int(r["seed"]) for r in data["lr_runs"]}) or None)
    activation = lr_study_activation(params["data"])
    claim_list = claims.build(data, params["report"], activation)
    samples = sorted({r["samples"] for r in data["lr_at_init"]})
    labels = numbered(claim_list)
    write_json(out / "claims.json", {"protocol": {"hash": status["hash"], "version": (status["row"] or {}).get("version"),
                                                  "commit": (status["row"] or {}).get("commit"), "seeds": status["seeds"],
                                                  "confirmatory": status["confirmatory"], "exploratory_seeds": status["designed_on"]},
                                     "tally": tally(claim_list),
                                     "claims": [c.to_dict() | {"row": labels[c.id]} for c in claim_list], "lr_fairness": data["lr_fairness"]})
    write_json(out / "metrics.json", metrics(claim_list))
    figures = read_json(out / "figures.json")
    (out / "claims.md").write_text(render_markdown(claim_list, data["lr_fairness"], figures, params, samples, activation, status) + "\n")
    for c in claim_list:
        print(f"{labels[c.id]:>4} {c.verdict:>12} {c.adjusted or '':>12}  {c.id}: {fmt(c.value)}  {c.robustness or ''}", flush=True)


if __name__ == "__main__":
    main()
