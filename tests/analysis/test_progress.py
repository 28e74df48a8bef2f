"""The analysis progress display: silent unless active, one line per quantity off a terminal, a live bar on one."""

import io

from torch import nn

from initlab.analysis import CurvatureProblem, curvature_record
from initlab.analysis.progress import Progress, reporting, stage
from tests.analysis.curvature_oracles import classification_batch, tiny_mlp

CE = nn.CrossEntropyLoss()


def solve() -> int:
    x, y = classification_batch(seed=3)
    return curvature_record(CurvatureProblem(tiny_mlp("tanh", seed=2), CE, (x, y)), k=1).n_products


def test_lines_count_the_products_of_each_quantity(capfd) -> None:
    stream = io.StringIO()
    with reporting(Progress(stream)):  # a StringIO is not a TTY
        with stage("eigenvalues", planned=400):
            products = solve()
        with stage("statistics"):
            pass
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("analyze: eigenvalues: ")
    assert f"{products + 3} Hessian-vector products (planned <= 400)" in lines[0]  # + the operator's 3-product check
    assert lines[1].startswith("analyze: statistics: ") and "products" not in lines[1]
    solve()  # no progress active: the library stays silent
    assert capfd.readouterr().err == "" and len(stream.getvalue().splitlines()) == 2


def test_a_terminal_gets_a_live_bar_with_the_count() -> None:
    stream = io.StringIO()
    with reporting(Progress(stream, interactive=True)):
        with stage("eigenvalues", planned=400):
            products = solve()
    shown = stream.getvalue()
    assert "eigenvalues" in shown and f"{products + 3} products" in shown
