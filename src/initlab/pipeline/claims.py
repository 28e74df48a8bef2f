"""The claims the report checks: one function per claim, from tidy rows to a :class:`Claim`.

Each function takes exactly the rows it needs (see :mod:`initlab.pipeline.tables`) and the
tolerances of ``params.yaml`` ``report``, states the claim and its source, the measured numbers,
what was expected and a verdict: ``holds``, ``fails`` or ``partially`` (some of the checks
hold), with the corrected statement where the source is wrong. Pure functions: tested on
synthetic rows.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from initlab.pipeline.tables import Row, geometric_mean, group_by, mean_std

HOLDS, FAILS, PARTIALLY = "holds", "fails", "partially"


@dataclass(frozen=True)
class Claim:
    """One row of the report."""

    id: str
    claim: str
    source: str
    measured: str
    value: float | None
    expected: str
    verdict: str
    correction: str | None = None
    figure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(checks: Sequence[bool]) -> str:
    """``holds`` if every check passes, ``fails`` if none does, ``partially`` otherwise."""
    if not checks:
        raise ValueError("a verdict needs at least one check")
    passed = sum(bool(c) for c in checks)
    return HOLDS if passed == len(checks) else FAILS if passed == 0 else PARTIALLY


def within(value: float | None, target: float, rel_tol: float) -> bool:
    """|value - target| <= rel_tol * |target| (False for missing or non-finite values)."""
    return value is not None and math.isfinite(value) and abs(value - target) <= rel_tol * abs(target)


def in_range(value: float | None, low: float, high: float) -> bool:
    return value is not None and math.isfinite(value) and low <= value <= high


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the report: ``digits`` significant digits, 'n/a' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def _span(values: Sequence[float]) -> str:
    return f"{fmt(min(values))}..{fmt(max(values))}"


# ---------------------------------------------------------------- random matrices and Jacobians


def rmt_norm(rows: Sequence[Row], rel_tol: float, min_dim: int = 256) -> Claim:
    """Paper Cor. 2, eq. (7): E||W|| ~ (sqrt m + sqrt n) sigma."""
    ratios = {(m, n): mean_std(r["ratio"] for r in group)[0] for (m, n), group in group_by(rows, "m", "n").items()}
    large = [v for (m, n), v in ratios.items() if min(m, n) >= min_dim]
    small = [v for (m, n), v in ratios.items() if min(m, n) < min_dim]
    mean_large = mean_std(large)[0]
    checks = [within(v, 1.0, rel_tol) for v in large] + [within(v, 1.0, rel_tol) for v in small]
    return Claim(
        id="cor2_rmt_norm",
        claim="For iid zero-mean weights with std sigma, E||W||_2 ~ (sqrt(m) + sqrt(n)) sigma (so the spectral sigma gives ||W|| ~ 1).",
        source="paper Corollary 2, eq. (7)-(8)",
        measured=(f"||W|| / ((sqrt m + sqrt n) sigma) = {fmt(mean_large)} on average for min(m, n) >= {min_dim} "
                  f"(range {_span(large)}), {_span(small)} for the smaller shapes; normal and uniform entries, {len(ratios)} shapes."),
        value=mean_large,
        expected=f"ratio within {rel_tol:.0%} of 1",
        verdict=verdict(checks),
        correction=None if all(checks) else
        "The edge (sqrt m + sqrt n) sigma is the large-size limit; at small sizes E||W|| sits a few percent below it "
        "(Tracy-Widom fluctuations of order n^(-2/3)).",
        figure="rmt_norms",
    )


def rmt_unit_variance_typo(rows: Sequence[Row]) -> Claim:
    """Paper §3.4: 'the largest singular value of a random m x n matrix with zero-mean, unit-variance entries
    is 1/(sqrt m + sqrt n) on average'."""
    largest = max(rows, key=lambda r: r["m"] * r["n"])
    m, n = largest["m"], largest["n"]
    unit = mean_std(r["norm"] / r["sigma"] for r in rows if (r["m"], r["n"]) == (m, n))[0]
    paper = 1.0 / (math.sqrt(m) + math.sqrt(n))
    return Claim(
        id="sec34_unit_variance_norm",
        claim="The largest singular value of an m x n matrix with zero-mean unit-variance entries is 1/(sqrt m + sqrt n) on average.",
        source="paper §3.4 (proof of Corollary 2)",
        measured=f"{m}x{n}: E sigma_max / sigma = {fmt(unit, 4)}; 1/(sqrt m + sqrt n) = {fmt(paper)}; sqrt m + sqrt n = {fmt(math.sqrt(m) + math.sqrt(n), 4)}.",
        value=unit,
        expected=f"{fmt(paper)} (as written)",
        verdict=HOLDS if within(unit, paper, 0.05) else FAILS,
        correction="Typo: it is sqrt(m) + sqrt(n) (Silverstein / Bai-Yin), which is what eq. (7) uses.",
        figure="rmt_norms",
    )


def spectral_jacobian(main_rows: Sequence[Row], deep_rows: Sequence[Row], rel_tol: float, activation: str) -> Claim:
    """Paper Cor. 1 + 2: the spectral init gives ||J^(k)|| ~ 1 per layer (slope-1 smooth activations)."""
    main = [r["jacobian_norm"] for r in main_rows if r["init"] == "spectral"]
    by_act = {act: [r["jacobian_norm"] for r in group] for (act,), group in
              group_by([r for r in deep_rows if r["init"] == "spectral"], "activation").items()}
    main_ok = bool(main) and all(within(v, 1.0, rel_tol) for v in main)
    checks = [main_ok] + [all(within(v, 1.0, rel_tol) for v in values) for values in by_act.values()]
    parts = [f"pipeline MLP ({activation}), per layer {', '.join(fmt(v) for v in main_mean_per_layer(main_rows))}"]
    parts += [f"8-layer MLP with {act}: {_span(values)} (mean {fmt(mean_std(values)[0])})" for act, values in by_act.items()]
    return Claim(
        id="cor1_spectral_jacobian",
        claim="Initializing with sigma = 1/(sqrt d_in + sqrt d_out) makes every layer Jacobian norm ||J^(k)|| ~ 1.",
        source="paper Corollary 1 and Corollary 2 (slope-1 smooth activations)",
        measured="Mean per-sample ||J^(k)|| under the spectral init: " + "; ".join(parts) + ".",
        value=mean_std(main)[0],
        expected=f"within {rel_tol:.0%} of 1 for every layer",
        verdict=verdict(checks),
        correction=None if all(checks) else
        "Holds for tanh (slope 1 at 0) but not for ReLU: the activation derivative zeroes about half of the rows, so "
        "||J^(k)|| ~ (sqrt(d_out/2) + sqrt(d_in)) sigma < 1; Corollary 2's slope-1 assumption is needed (scale sigma "
        "up for ReLU, or calibrate ||J^(k)|| on data as Corollary 1 suggests).",
        figure="layer_curvature",
    )


def main_mean_per_layer(rows: Sequence[Row], init: str = "spectral", column: str = "jacobian_norm") -> list[float]:
    """Mean over seeds of ``column`` per layer for ``init``."""
    groups = group_by(sorted((r for r in rows if r["init"] == init), key=lambda r: r["layer"]), "layer")
    return [mean_std(r[column] for r in group)[0] for group in groups.values()]


def sigma_ratio(rows: Sequence[Row]) -> Claim:
    """Paper Remark 3: spectral sigma is between 1/sqrt(2) and 1 times Glorot's."""
    measured = [r["measured_ratio"] for r in rows]
    formula = [r["formula_ratio"] for r in rows]
    in_paper_range = [in_range(v, 1 / math.sqrt(2) - 0.02, 1.0 + 0.02) for v in measured]
    shapes = ", ".join(f"{r['fan_in']}->{r['fan_out']}: {fmt(r['measured_ratio'])} (formula {fmt(r['formula_ratio'])})" for r in rows)
    return Claim(
        id="rem3_sigma_ratio",
        claim="The spectral init's sigma is between 1/sqrt(2) and 1 times Glorot's sigma (equal up to that factor).",
        source="paper Remark 3 (and METHODS.md §1)",
        measured=f"sigma_spectral / sigma_Glorot from the runs' init.json: {shapes}.",
        value=min(measured) if measured else None,
        expected="in [0.707, 1]",
        verdict=verdict(in_paper_range) if measured else FAILS,
        correction=(
            f"sigma_spectral / sigma_Glorot = sqrt(d_in + d_out) / (sqrt 2 (sqrt d_in + sqrt d_out)), which lies in "
            f"[1/2, 1/sqrt 2): exactly 1/2 for square layers, tending to 1/sqrt 2 for very skewed ones (here {_span(formula)}). "
            "The inequality of Remark 3 is right, but it bounds (sqrt a + sqrt b)/sqrt(a + b), and Glorot's sigma carries a "
            "sqrt 2: sqrt(2/(a + b))."
        ) if formula else None,
        figure=None,
    )


# ---------------------------------------------------------------- Hessian structure


def relu_gauss_newton(rows: Sequence[Row], exact_tol: float) -> Claim:
    """Paper Remark 1: for ReLU the block Hessian equals its Gauss-Newton part exactly."""
    relu = [r for r in rows if r["activation"] == "relu"]
    blocks = [r for r in relu if str(r["block"]) != "all"]
    full = [r for r in relu if str(r["block"]) == "all"]
    worst = max((r["rel_diff"] for r in blocks), default=math.nan)
    states = ", ".join(dict.fromkeys(r["state"] for r in blocks))
    return Claim(
        id="rem1_relu_gauss_newton",
        claim="For ReLU networks the layer Hessian H_w(k) equals the Gauss-Newton term exactly (f'' = 0).",
        source="paper Remark 1 (Theorem 1)",
        measured=(f"max over layer blocks and states ({states}) of |lambda_H - lambda_GN| / lambda_H = {fmt(worst)}"
                  + (f"; for the whole network (cross-layer blocks included) the gap is {_span([r['rel_diff'] for r in full])}." if full else ".")),
        value=worst,
        expected=f"<= {exact_tol:g} on every layer block",
        verdict=HOLDS if blocks and worst <= exact_tol else FAILS,
        correction=None,
        figure="gauss_newton",
    )


def smooth_gauss_newton(rows: Sequence[Row], near_tol: float, main_rows: Sequence[Row] = ()) -> Claim:
    """Paper Remark 2: Gauss-Newton approximates the Hessian well near init (smooth activations), worse far from it."""
    smooth = [r for r in rows if r["activation"] != "relu" and str(r["block"]) != "all"]
    gap = {state: max(r["rel_diff"] for r in group) for (state,), group in group_by(smooth, "state").items()}
    near = gap.get("init", math.nan)
    far = max((v for s, v in gap.items() if s != "init"), default=math.nan)
    checks = [near <= near_tol, far > near]
    text = ", ".join(f"{state}: {fmt(100 * v, 2)}%" for state, v in gap.items())
    if main_rows:
        main_gap = {state: max(abs(r["lambda_max"] - r["gauss_newton_lambda_max"]) / abs(r["lambda_max"]) for r in group)
                    for (state,), group in group_by(main_rows, "state").items()}
        text += "; pipeline MLP (tanh), max over layers and runs: " + ", ".join(f"{s}: {fmt(100 * v, 2)}%" for s, v in main_gap.items())
    return Claim(
        id="rem2_smooth_gauss_newton",
        claim="For smooth activations the Gauss-Newton term approximates the layer Hessian well near init and worse far from it.",
        source="paper Remark 2 (Theorem 1)",
        measured=f"max relative gap |lambda_H - lambda_GN| / lambda_H over tanh layer blocks: {text}.",
        value=near,
        expected=f"<= {near_tol:.0%} at init, larger after training / with scaled weights",
        verdict=verdict(checks),
        correction=None if all(checks) else
        "The gap stays small in all states measured: the H_2 term is small relative to GN here even away from init.",
        figure="gauss_newton",
    )


def theorem2(rows: Sequence[Row]) -> Claim:
    """Paper Theorem 2, eq. (6): ||H_w(k)|| <~ prod_{i != k} ||J^(i)|| ||A^(k)||. A bound holds only if it is never exceeded."""
    as_written = [r["ratio_as_written"] for r in rows if r["ratio_as_written"] is not None]
    corrected = [r["ratio_corrected"] for r in rows if r["ratio_corrected"] is not None]
    holds_written = [v <= 1.0 for v in as_written]
    return Claim(
        id="thm2_bound",
        claim="The layer Hessian norm is bounded by the product of the other layers' Jacobian norms times ||A^(k)||.",
        source="paper Theorem 2, eq. (6)",
        measured=(f"lambda_max(H_w(k)) / bound over all layers, inits and seeds at init: as written {_span(as_written)} "
                  f"(bound violated in {sum(not h for h in holds_written)} of {len(as_written)} cases); corrected bound "
                  f"{_span(corrected)} ({sum(v > 1.0 + 1e-6 for v in corrected)} violations)."),
        value=max(as_written) if as_written else None,
        expected="ratio <= 1 (an upper bound)",
        verdict=HOLDS if as_written and all(holds_written) else FAILS,
        correction=(
            "As written eq. (6) is not scale-consistent: it omits the loss curvature ||H_z||, the layer input z^(k) and the "
            "squares. What Theorem 1 gives exactly for the Gauss-Newton part is lambda_max(H_w(k)) <= sum_n ||H_z,n|| "
            "||A_n^(k)||^2 prod_{i>k} ||J_n^(i)||^2 ||(z_n^(k), 1)||^2 (exact for ReLU, up to H_2 otherwise); the measured "
            "ratios to this corrected bound are all <= 1." if corrected and max(corrected) <= 1.0 + 1e-6 else
            "The bound needs the loss curvature, the layer input and squared Jacobian norms (see the corrected bound)."
        ),
        figure="theorem2",
    )


def init_controls_hessian(rows: Sequence[Row], factor: float = 3.0) -> Claim:
    """Paper §1.2: good init controls the Hessian, ||H_w(k)|| ~ 1; compare the per-layer lambda_max by init."""
    per_init = {init: main_mean_per_layer(rows, init, "lambda_max") for init in dict.fromkeys(r["init"] for r in rows)}
    worst = {init: max(values) for init, values in per_init.items()}
    spectral = per_init.get("spectral", [])
    checks = [bool(spectral) and all(in_range(v, 1 / factor, factor) for v in spectral),
              bool(spectral) and worst["spectral"] <= min(worst.values()) + 1e-12]
    text = "; ".join(f"{init}: {', '.join(fmt(v) for v in values)}" for init, values in per_init.items())
    return Claim(
        id="sec12_init_controls_hessian",
        claim="A good init controls the Hessian: with the spectral init every layer block has ||H_w(k)|| ~ 1, below other schemes.",
        source="paper §1.2 ('good initialization controls hessian')",
        measured=f"lambda_max(H_w(k)) per layer at init (mean over seeds): {text}.",
        value=worst.get("spectral"),
        expected=f"spectral: every block within a factor {factor:g} of 1 and the smallest largest block among the inits",
        verdict=verdict(checks),
        correction=None if all(checks) else
        "The spectral init gives the smallest layer blocks, but their size is set by the data norm and the loss curvature "
        "(Theorem 2 corrected), not by ||J|| ~ 1 alone, so ||H_w(k)|| ~ 1 is not automatic.",
        figure="layer_curvature",
    )


def gamma_star(summary: dict[str, Row]) -> Claim:
    """Paper §1.2: gamma* = 1/||H|| is the largest step that guarantees a decrease."""
    stable = {init: s["max_stable_factor"] for init, s in summary.items()}
    unstable = {init: s["min_unstable_factor"] for init, s in summary.items()}
    first = {init: s["max_first_step_decrease_factor"] for init, s in summary.items()}
    beyond = [v is not None and v > 1.0 for v in stable.values()]
    text = "; ".join(f"{init}: stable up to {fmt(stable[init])}/lambda_0, unstable from {fmt(unstable[init])}/lambda_0, "
                     f"first step still decreases at {fmt(first[init])}/lambda_0" for init in summary)
    return Claim(
        id="sec12_gamma_star",
        claim="The largest step size that guarantees a decrease of the loss is gamma* = 1/||H|| (= 1/lambda_max).",
        source="paper §1.2 (quadratic model, citing the book)",
        measured=f"Full-batch GD from init, lr = c / lambda_max(H_0): {text}.",
        value=stable.get("spectral"),
        expected="divergence (no decrease) for lr just above 1/lambda_max",
        verdict=FAILS if all(beyond) else verdict([not b for b in beyond]),
        correction=(
            "On the quadratic model L(w - g g) = L - g ||grad||^2 + g^2/2 grad^T H grad decreases for every step "
            "g < 2 ||grad||^2 / grad^T H grad, i.e. for all g < 2/||H||; 1/||H|| is the step with the largest guaranteed "
            "decrease, not the largest safe one (and the expansion's '- gamma g' should read '- gamma ||g||^2'). Networks "
            "tolerate even more when their curvature drops in the first steps (Glorot/He here)."
        ),
        figure="lr_stability",
    )


def edge_of_stability(rows: Sequence[Row], settle_fraction: float = 0.5) -> Claim:
    """Book ch. 8 / METHODS.md §5: GD is stable only while lambda_max < 2/lr."""
    traces = group_by([r for r in rows if r["lambda_max"] is not None], "factor")
    peaks, finals = {}, {}
    for (factor,), group in traces.items():
        sharpness = [(r["step"], r["lambda_max"] * r["lr"] / 2) for r in group]
        settled = settle_fraction * max(step for step, _ in sharpness)
        peaks[factor] = max(value for _, value in sharpness)
        finals[factor] = max(value for step, value in sharpness if step >= settled)
    checks = [v <= 1.0 for v in finals.values()]
    text = "; ".join(f"lr = {fmt(f)}/lambda_0: peak lambda_max*lr/2 = {fmt(peaks[f])}, in the second half of the run at most "
                     f"{fmt(finals[f])}" for f in peaks)
    return Claim(
        id="gd_edge_2_over_lr",
        claim="Gradient descent with step lr can only settle where lambda_max(H) < 2/lr; past it the loss spikes and the sharpness is driven back.",
        source="book ch. 8 (quadratic model); METHODS.md §5 (compare 1/lambda_max with the lr at which training diverges)",
        measured=text + ".",
        value=max(finals.values()) if finals else None,
        expected="lambda_max * lr / 2 <= 1 once training has settled",
        verdict=verdict(checks) if checks else FAILS,
        correction=None,
        figure="edge_of_stability",
    )


# ---------------------------------------------------------------- signal propagation


def symmetry(rows: Sequence[Row]) -> Claim:
    """Seeds (METHODS.md §1, §6): zero / constant init keeps hidden units identical."""
    last = {}
    for (init, layer), group in group_by(rows, "init", "layer").items():
        last[(init, layer)] = max(group, key=lambda r: r["step"])
    symmetric = {k: v for k, v in last.items() if k[0] in ("zeros", "constant")}
    random = {k: v for k, v in last.items() if k[0] not in ("zeros", "constant")}
    checks = [r["distance"] <= 1e-5 and r["rank"] <= 1 for r in symmetric.values()]
    checks += [r["distance"] > 1e-3 for r in random.values()]
    text = "; ".join(f"{init} layer {layer}: distance {fmt(r['distance'])}, rank {r['rank']}" for (init, layer), r in last.items())
    steps = max((r["step"] for r in rows), default=0)
    return Claim(
        id="seed_symmetry",
        claim="With all-zero or constant weights the hidden units stay identical under training (symmetry never breaks).",
        source="seeds: METHODS.md §1 and §6",
        measured=f"After {steps} SGD steps, relative mean pairwise distance of hidden units' weight rows and rank of W: {text}.",
        value=max((r["distance"] for r in symmetric.values()), default=None),
        expected="distance 0 and rank <= 1 for zeros/constant; > 0 and full rank for a random init",
        verdict=verdict(checks),
        correction=None,
        figure="symmetry",
    )


def deep_linear_powers(rows: Sequence[Row], exact_tol: float) -> Claim:
    """Seeds (METHODS.md §6): W = s I in an L-layer linear net scales activations and gradients by s^(L-1)."""
    checks, parts, value = [], [], None
    for (case,), group in group_by([r for r in rows if r.get("scale")], "case").items():
        by_layer = {r["layer"]: r for r in group}
        depth, scale = max(by_layer), group[0]["scale"]
        act = by_layer[depth]["activation_norm"] / by_layer[1]["activation_norm"]
        grad = by_layer[1]["gradient_norm"] / by_layer[depth]["gradient_norm"]
        predicted = scale ** (depth - 1)
        checks += [within(act, predicted, exact_tol * 100), within(grad, predicted, exact_tol * 100)]
        parts.append(f"W = {case}: ||z^(L)||/||z^(1)|| = {fmt(act, 5)}, ||dL/dz^(1)||/||dL/dz^(L)|| = {fmt(grad, 5)}, "
                     f"{fmt(scale)}^{depth - 1} = {fmt(predicted, 5)}")
        value = act if scale > 1 else value
    for (case,), group in group_by([r for r in rows if not r.get("scale")], "case").items():
        depth = max(r["layer"] for r in group)
        ratio = geometric_mean(
            g[depth]["activation_norm"] / g[1]["activation_norm"]
            for g in ({r["layer"]: r for r in trial} for trial in group_by(group, "trial").values())
        )
        parts.append(f"{case}: geometric-mean activation ratio {fmt(ratio)}")
    return Claim(
        id="seed_deep_linear",
        claim="In a deep linear net (10 layers of width 2) W = 1.5 I explodes and W = 0.5 I vanishes: activations and gradients scale like 1.5^(L-1) and 0.5^(L-1).",
        source="seeds: METHODS.md §6",
        measured="; ".join(parts) + ".",
        value=value,
        expected=f"equal to s^(L-1) up to {exact_tol * 100:g} relative (float32)",
        verdict=verdict(checks) if checks else FAILS,
        correction=None,
        figure="deep_linear",
    )


def square_layer_variance_ratio(rows: Sequence[Row], activation: str, init: str, column: str = "preactivation_var") -> float:
    """Geometric mean of Var(u^(k)) / Var(u^(k-1)) over the square hidden layers (the per-layer variance gain)."""
    layers = sorted((r for r in rows if r["activation"] == activation and r["init"] == init), key=lambda r: r["layer"])
    square = [k for k, r in enumerate(layers) if r["fan_in"] == r["fan_out"]]
    return geometric_mean(layers[k][column] / layers[k - 1][column] for k in square if k >= 1)


def xavier_relu(rows: Sequence[Row]) -> Claim:
    """Lectures (He et al.): Glorot's variance is halved by every ReLU layer; He's keeps it."""
    xavier = square_layer_variance_ratio(rows, "relu", "xavier_normal")
    kaiming = square_layer_variance_ratio(rows, "relu", "kaiming_normal")
    checks = [in_range(xavier, 0.4, 0.6), in_range(kaiming, 0.8, 1.25)]
    return Claim(
        id="xavier_fails_relu",
        claim="Glorot/Xavier init halves the pre-activation variance at every ReLU layer (signal vanishes with depth); He init keeps it.",
        source="lectures (6.4), He et al. 2015 (paper ref. [4])",
        measured=f"per-layer Var(u^(k))/Var(u^(k-1)) on square ReLU layers (geometric mean): xavier_normal {fmt(xavier)}, kaiming_normal {fmt(kaiming)}.",
        value=xavier,
        expected="xavier in [0.4, 0.6] (1/2), kaiming in [0.8, 1.25] (1)",
        verdict=verdict(checks),
        correction=None,
        figure="variance_flow",
    )


def spectral_variance_flow(rows: Sequence[Row]) -> Claim:
    """Paper §1.2 / Rem. 3: the spectral scheme is 'very close' to Glorot's variance-preserving init."""
    ratios = {init: square_layer_variance_ratio(rows, "tanh", init) for init in dict.fromkeys(r["init"] for r in rows)}
    spectral = ratios.get("spectral")
    return Claim(
        id="spectral_variance_flow",
        claim="The spectral init is close to Glorot's and keeps the forward signal's scale through depth (tanh).",
        source="paper §1.2 ('formulas very close to those proposed before'), Remark 3",
        measured="per-layer Var(u^(k))/Var(u^(k-1)) on square tanh layers: " + ", ".join(f"{i} {fmt(v)}" for i, v in ratios.items()) + ".",
        value=spectral,
        expected="about 1 (variance preserved)",
        verdict=HOLDS if in_range(spectral, 0.8, 1.25) else FAILS,
        correction=(
            "The spectral init controls the worst-case gain ||J^(k)|| ~ 1, not the typical gain: a random direction is "
            "scaled by sqrt(d_in) sigma = 1/2 on a square layer, so the forward variance shrinks about 4x per layer "
            "(n sigma^2 = 1/4) and deep nets start with vanishing signals."
        ),
        figure="variance_flow",
    )


def cauchy_elbow(summary: dict[str, float], ks_max: float) -> Claim:
    """Seeds (METHODS.md §2): with w, b ~ N(0,1) the ReLU elbow -b/w is standard Cauchy."""
    ks = summary["ks_cauchy"]
    return Claim(
        id="seed_cauchy_elbow",
        claim="With w, b ~ N(0, 1) the ReLU elbow c = -b/w is standard Cauchy (so its mean is undefined).",
        source="seeds: METHODS.md §2",
        measured=(f"Kolmogorov-Smirnov distance to the standard Cauchy CDF {fmt(ks)} (p = {fmt(summary['p_cauchy'])}, "
                  f"{summary['samples']} samples); to the standard normal {fmt(summary['ks_normal'])}."),
        value=ks,
        expected=f"KS distance <= {ks_max:g}",
        verdict=HOLDS if ks <= ks_max else FAILS,
        correction=None,
        figure="relu_elbow",
    )


def dead_relus(rows: Sequence[Row]) -> Claim:
    """Seeds (METHODS.md §2): a 0.1 bias on ReLU units avoids dead units at init."""
    mean = {(init, bias): mean_std(r["dead_fraction"] for r in group)[0] for (init, bias), group in group_by(rows, "init", "bias").items()}
    inits = list(dict.fromkeys(init for init, _ in mean))
    helped = {init: mean.get((init, "relu_0.1"), math.nan) <= mean.get((init, "zeros"), math.nan) for init in inits}
    checks = list(helped.values())
    zero_bias = [v for (init, bias), v in mean.items() if bias == "zeros"]
    return Claim(
        id="seed_dead_relu",
        claim="Dead ReLUs at init are measurable, and a small positive bias (0.1) on ReLU units avoids them.",
        source="seeds: METHODS.md §2 (bias 0.1 for ReLU units)",
        measured="mean fraction of dead units over the 8 ReLU layers: " + ", ".join(
            f"{init}/bias {bias}: {fmt(v)}" for (init, bias), v in mean.items()) + (
            "; with zero bias all Gaussian inits give the same fraction (ReLU is positively homogeneous, so only the "
            "direction of W matters)." if zero_bias and max(zero_bias) - min(zero_bias) < 1e-12 else "."),
        value=max(zero_bias) if zero_bias else None,
        expected="relu_0.1 bias: no more dead units than zero bias, for every init",
        verdict=verdict(checks),
        correction=None if all(checks) else (
            f"A 0.1 bias helps only where the pre-activations are small next to it ({', '.join(i for i, h in helped.items() if h) or 'none'}); "
            f"with larger weights ({', '.join(i for i, h in helped.items() if not h)}) the positive bias adds the same shift to every "
            "unit's inputs in the next layers and leaves as many or more units dead: the bias must be chosen relative to the "
            "pre-activation scale."),
        figure="relu_elbow",
    )


# ---------------------------------------------------------------- optimizers and training


def momentum_canyon(summary: dict[str, Any]) -> Claim:
    """Book 8.3 / lectures 6.7: momentum speeds up ill-conditioned problems."""
    ratio = summary["steps_ratio"]
    return Claim(
        id="momentum_canyon",
        claim="Momentum speeds up gradient descent on ill-conditioned problems (a canyon).",
        source="book ch. 8.3; lectures 6.7; METHODS.md §6",
        measured=(f"condition number {fmt(summary['condition'])}: best GD (lr = {fmt(summary['gd']['lr'])}) needs {summary['gd']['steps']} steps "
                  f"to loss <= {summary['tol']:g}, best heavy-ball momentum (alpha = {summary['momentum']['alpha']}, lr = "
                  f"{fmt(summary['momentum']['lr'])}) {summary['momentum']['steps']}: {fmt(ratio)}x fewer (sqrt(kappa) = {fmt(summary['sqrt_condition'])})."),
        value=ratio,
        expected="> 2x fewer steps (theory: about sqrt(kappa))",
        verdict=HOLDS if ratio is not None and ratio > 2 else FAILS,
        correction=None,
        figure="canyon",
    )


def terminal_velocity(velocity: dict[str, Any], rel_tol: float = 1e-3) -> Claim:
    """METHODS.md §3: momentum's terminal velocity under a constant gradient is eps ||g|| / (1 - alpha)."""
    return Claim(
        id="momentum_terminal_velocity",
        claim="Under a constant gradient momentum reaches the terminal velocity eps ||g|| / (1 - alpha) (alpha = 0.9: a 10x speed-up).",
        source="book ch. 8.3 (METHODS.md §3)",
        measured=f"alpha = {velocity['alpha']}: step length / (eps ||g||) = {fmt(velocity['speedup'], 6)} after {velocity['steps']} steps.",
        value=velocity["speedup"],
        expected=f"{fmt(velocity['predicted_speedup'])}",
        verdict=HOLDS if within(velocity["speedup"], velocity["predicted_speedup"], rel_tol) else FAILS,
        correction=None,
        figure=None,
    )


def adam_robust(table: Sequence[Row]) -> Claim:
    """Book ch. 8.5: Adam works with its defaults whatever the init; plain SGD depends more on it."""
    spread, listing = {}, []
    for (optim,), group in group_by(table, "optim").items():
        accs = [r["test_acc"] for r in group if math.isfinite(r["test_acc"])]
        losses = [r["test_loss"] for r in group if math.isfinite(r["test_loss"])]
        spread[optim] = (max(accs) - min(accs) if accs else math.nan, max(losses) - min(losses) if losses else math.nan)
        listing.append(f"{optim}: " + ", ".join(f"{r['init']} {fmt(r['test_acc'], 4)} / {fmt(r['test_loss'])}" for r in group))
    adam, sgd = spread.get("adam"), spread.get("sgd")
    checks = [adam is not None and sgd is not None and adam[i] <= sgd[i] for i in (0, 1)]
    return Claim(
        id="adam_robust_defaults",
        claim="Adam with its default hyperparameters is robust to the init: its results vary less across inits than SGD's.",
        source="book ch. 8.5 (Adam 'fairly robust to the choice of hyperparameters')",
        measured="spread (max - min) over inits of the mean test accuracy / test loss: "
        + ", ".join(f"{o} {fmt(a)} / {fmt(b)}" for o, (a, b) in spread.items())
        + f" (accuracy / loss per init: {'; '.join(listing)}; default learning rates only).",
        value=adam[0] if adam else None,
        expected="adam's spreads <= sgd's, for accuracy and loss",
        verdict=verdict(checks),
        correction=None,
        figure="training_curves",
    )


def training_outcome(table: Sequence[Row], acc_tol: float) -> Claim:
    """Per optimizer: does the spectral init train as well as the best init?"""
    checks, parts = [], []
    for (optim,), group in group_by(table, "optim").items():
        best = max(group, key=lambda r: r["test_acc"] if math.isfinite(r["test_acc"]) else -1)
        spectral = next((r for r in group if r["init"] == "spectral"), None)
        if spectral is None:
            continue
        checks.append(spectral["test_acc"] >= best["test_acc"] - acc_tol)
        parts.append(f"{optim}: spectral {fmt(spectral['test_acc'])} vs best {best['init']} {fmt(best['test_acc'])}")
    failed = sum(r["failed"] + r["diverged"] for r in table)
    return Claim(
        id="training_outcome",
        claim="The spectral init trains as well as Glorot/He (the paper proposes it as a more principled replacement).",
        source="paper §1.2 and abstract",
        measured="mean test accuracy over seeds: " + "; ".join(parts) + f"; {failed} run(s) diverged or failed (full table below).",
        value=min((r["test_acc"] for r in table if r["init"] == "spectral"), default=None),
        expected=f"spectral within {acc_tol:.0%} of the best init for every optimizer",
        verdict=verdict(checks) if checks else FAILS,
        correction=None if checks and all(checks) else
        "With a fixed epoch budget and SGD's default lr the spectral init (smaller weights, smaller curvature) trains "
        "more slowly; it would need a larger lr (its lambda_max allows one).",
        figure="training_curves",
    )
