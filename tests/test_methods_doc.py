"""docs/methods.md cannot fall behind: its tables list every registry entry and conf option, and
formulas it states hold for the code (computed here from the doc's closed forms, independently)."""

import math
import re
from pathlib import Path

import pytest
import torch

from initlab.init import BIAS_INITS, DATA_AWARE_INITS, WEIGHT_INITS, spectral_std
from initlab.locations import CONFIG_DIR
from initlab.optim import OPTIMIZERS, SCHEDULES

DOC = Path(__file__).resolve().parents[1] / "docs" / "methods.md"

# first header cell of a table in the doc -> (registry names, conf folder of its options)
REGISTRIES = {
    "init": (set(WEIGHT_INITS) | set(DATA_AWARE_INITS), CONFIG_DIR / "init"),
    "init/bias": (set(BIAS_INITS), CONFIG_DIR / "init" / "bias"),
    "optim": (set(OPTIMIZERS), CONFIG_DIR / "optim"),
    "sched": (set(SCHEDULES), CONFIG_DIR / "sched"),
}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def doc_tables(text: str) -> dict[str, set[str]]:
    """First-column names (backticks stripped) of every markdown table, merged by the table's first header cell."""
    tables: dict[str, set[str]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        starts_table = line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
        if starts_table:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row)[0].strip("`"))
            tables.setdefault(_cells(line)[0], set()).update(rows)
    return tables


def test_table_parser_reads_first_columns() -> None:
    text = "intro\n| optim | update |\n|---|---|\n| `sgd` | x |\n| `adam` | y |\n\n| optim | z |\n|---|---|\n| `rmsprop` | w |\n"
    assert doc_tables(text) == {"optim": {"sgd", "adam", "rmsprop"}}


@pytest.mark.parametrize("group", sorted(REGISTRIES))
def test_doc_lists_every_registry_entry_and_conf_option(group: str) -> None:
    names, conf = REGISTRIES[group]
    listed = doc_tables(DOC.read_text()).get(group, set())
    options = {path.stem for path in conf.glob("*.yaml")}
    assert listed == names, f"docs/methods.md `{group}` table: missing {sorted(names - listed)}, extra {sorted(listed - names)}"
    assert listed == options, f"docs/methods.md `{group}` table vs conf: missing {sorted(options - listed)}"


def test_doc_has_no_path_outside_the_repository() -> None:
    assert "/".join(("..", "shared")) not in DOC.read_text()


def _glorot_std(m: int, n: int) -> float:
    return math.sqrt(2.0 / (m + n))


def test_spectral_sigma_is_the_documented_formula_and_gives_unit_norm() -> None:
    """sigma = 1/(sqrt(fan_in) + sqrt(fan_out)) (eq. (8)); then ||W||_2 ~ 1 (eq. (7)) for a Gaussian 600 x 300 draw."""
    assert "sigma_spectral = 1 / (sqrt(fan_in) + sqrt(fan_out))" in DOC.read_text()
    for fan_in, fan_out in [(784, 256), (256, 10), (27, 144), (1, 1)]:
        assert spectral_std(fan_in, fan_out) == pytest.approx(1 / (fan_in**0.5 + fan_out**0.5), rel=1e-12)
    weight = torch.empty(300, 600, dtype=torch.float64)
    torch.manual_seed(0)
    WEIGHT_INITS["spectral"](weight, 600, 300)
    assert weight.std().item() == pytest.approx(1 / (600**0.5 + 300**0.5), rel=0.01)
    assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, rel=0.03)


def test_remark_3_ratio_lies_in_the_documented_range() -> None:
    """spectral / Glorot std in [1/2, 1/sqrt(2)): 1/2 for square layers, towards 1/sqrt(2) for skewed ones."""
    text = DOC.read_text()
    assert "**[1/2, 1/sqrt(2))**" in text and "always *smaller* than Glorot's" in text
    sizes = [1, 2, 3, 10, 64, 100, 256, 784, 1000, 4096, 10**6]
    ratios = {(m, n): spectral_std(m, n) / _glorot_std(m, n) for m in sizes for n in sizes}
    assert all(0.5 - 1e-12 <= r < 1 / math.sqrt(2) for r in ratios.values())
    assert all(ratios[(m, m)] == pytest.approx(0.5, rel=1e-12) for m in sizes)
    assert ratios[(10**6, 1)] == pytest.approx(1 / math.sqrt(2), rel=2e-3)
    weight = torch.empty(256, 784, dtype=torch.float64)
    torch.manual_seed(0)
    WEIGHT_INITS["xavier_normal"](weight, 784, 256)  # the code's Glorot: the closed form above
    assert weight.std().item() == pytest.approx(_glorot_std(784, 256), rel=0.01)


def test_momentum_reaches_the_documented_terminal_velocity() -> None:
    """Under a constant gradient g, book alg. 8.2 steps by eps g / (1 - alpha)."""
    assert "terminal velocity eps g / (1 - alpha)" in DOC.read_text()
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = OPTIMIZERS["momentum"]([theta], lr=0.1, alpha=0.9)
    for _ in range(300):
        previous = theta.detach().clone()
        theta.grad = torch.full_like(theta, 2.0)
        optimizer.step()
    assert (previous - theta.detach()).item() == pytest.approx(0.1 * 2.0 / (1 - 0.9), rel=1e-9)


def test_every_optimizer_update_names_its_source() -> None:
    text = DOC.read_text()
    for algorithm in range(1, 8):
        assert re.search(rf"book alg\. 8\.{algorithm}\b", text), f"book alg. 8.{algorithm} not cited"


def test_uniform_fanin_is_torchs_default_layer_init() -> None:
    """The doc's claim: torch's default Linear weight, kaiming_uniform_(a=sqrt(5)), is U(+-1/sqrt(fan_in)) = ``uniform_fanin``."""
    assert "equals torch's default `nn.Linear` / `nn.Conv2d` weight init" in DOC.read_text()
    torch.manual_seed(0)
    default = torch.nn.Linear(400, 300, dtype=torch.float64).weight.detach()
    ours = torch.empty(300, 400, dtype=torch.float64)
    WEIGHT_INITS["uniform_fanin"](ours, 400, 300)
    for weight in (default, ours):
        assert weight.abs().max().item() <= 1 / 20 and weight.abs().max().item() == pytest.approx(1 / 20, rel=1e-3)
        assert weight.std().item() == pytest.approx(1 / (20 * math.sqrt(3)), rel=0.01)
