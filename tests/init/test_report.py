"""init_report: the per-layer record written to init.json."""

import json
import math

import pytest
import torch

from initlab.init import Initializer, init_report
from initlab.init.report import FIELDS
from initlab.models import cnn, mlp

KEYS = ["name", "type", "fan_in", "fan_out", "weight_std", "weight_spectral_norm", "predicted_norm", "bias_mean", "bias_std"]


def test_report_of_a_spectral_mlp() -> None:
    model = mlp((784,), 10, widths=(256,))
    Initializer("spectral", bias={"scheme": "constant", "value": 0.5})(model)
    rows = init_report(model)["layers"]
    assert [list(row) for row in rows] == [KEYS, KEYS]
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    assert [(row["name"], row["type"], row["fan_in"], row["fan_out"]) for row in rows] == [
        (names[0], "Linear", 784, 256),
        (names[1], "Linear", 256, 10),
    ]
    for row, layer in zip(rows, (model[1], model[3]), strict=True):
        w = layer.weight.detach().double()
        assert row["weight_std"] == pytest.approx(w.std(correction=0).item(), rel=1e-5)
        assert row["weight_spectral_norm"] == pytest.approx(torch.linalg.svdvals(w)[0].item(), rel=1e-5)
        assert row["predicted_norm"] == pytest.approx((math.sqrt(row["fan_in"]) + math.sqrt(row["fan_out"])) * row["weight_std"])
        assert row["bias_mean"] == pytest.approx(0.5) and row["bias_std"] == pytest.approx(0.0, abs=1e-7)
    # paper eq. (7): the spectral init puts both the prediction and the measured norm near 1
    assert rows[0]["predicted_norm"] == pytest.approx(1.0, rel=0.03)
    assert rows[0]["weight_spectral_norm"] == pytest.approx(1.0, rel=0.03)
    json.dumps(rows)


def test_report_of_a_cnn_without_bias() -> None:
    model = cnn((3, 8, 8), 4, channels=(6,), hidden=16, kernel_size=3, bias=False)
    rows = init_report(Initializer("spectral")(model))["layers"]
    conv = rows[0]
    assert conv["type"] == "Conv2d"
    assert (conv["fan_in"], conv["fan_out"]) == (3 * 9, 6 * 9)
    weight = model[0].weight.detach().reshape(6, 27).double()
    assert conv["weight_spectral_norm"] == pytest.approx(torch.linalg.svdvals(weight)[0].item(), rel=1e-5)
    assert all(row["bias_mean"] is None and row["bias_std"] is None for row in rows)
    json.dumps(rows)


def test_every_field_has_a_legend_entry_and_the_document_is_json() -> None:
    report = init_report(Initializer("spectral")(mlp((12,), 3, widths=(8,))))
    assert list(report) == ["fields", "layers"]
    assert list(report["fields"]) == KEYS == list(FIELDS)
    assert all(isinstance(text, str) and len(text) > 10 for text in FIELDS.values())
    assert json.loads(json.dumps(report)) == report
