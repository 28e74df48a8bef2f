"""Every tensor of the study, spectra and data demos on the stage's device (``params.yaml`` ``device``).

As the curvature engine's device test does: the default device is switched to ``meta`` while a
stage body runs on CPU data, so a tensor created without the stage's device (a generator, an index
batch, a model built on the default device, ...) lands on meta and is recorded or breaks the run;
only "cpu" may appear.
"""

import pytest
import torch

from initlab.pipeline import spectra, study
from initlab.pipeline.demos import run_demo
from initlab.pipeline.prepare import prepare
from tests.analysis.test_engine import DeviceRecorder

SEEDS = [1, 2]
STUDY = {"budgets": [1, 2], "batch_size": 64, "eval_samples": 64, "curvature_samples": 64, "init_samples": 16, "tol": 1e-2,
         "curvature_c": 1.0, "lr_grid": {"sgd": [0.1, 0.3, 1.0], "adam": [1e-3, 1e-2]}, "eta": 3, "min_keep": 1,
         "diverge_factor": 10, "activations": ["tanh"], "edge_extensions": 1, "refine": {"optims": ["sgd"], "points_per_octave": 2}}
DEPTH = {"depths": [2], "width": 8, "activations": ["tanh"], "inits": ["spectral"], "optim": "sgd", "train_depths": [2],
         "train_inits": ["spectral"], "lr_factors": [0.5, 1.0], "budgets": [1], "eta": 3, "min_keep": 1, "diverge_factor": 10, "edge_extensions": 1,
         "batch_size": 64, "eval_samples": 64, "curvature_samples": 64, "curvature_seeds": 1, "init_samples": 16,
         "jacobian_samples": 8, "tol": 1e-2}
SPECTRA = {"seed": 1, "optim": "sgd", "samples": 64, "chunk": 32, "tol": 1e-2, "trace_probes": 4, "density_probes": 2,
           "density_steps": 8, "grid": 20, "probe_seed": 0, "every": 10}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    prepare("digits", SEEDS[0], root)
    return root


def test_study_spectra_and_data_demos_create_every_tensor_on_the_stage_device(results):
    params = {"data": "digits", "seeds": SEEDS, "inits": ["spectral"], "optimizers": ["sgd", "adam"], "study": STUDY,
              "depth": DEPTH, "spectra": SPECTRA,
              "data_demos": {"lr_stability": {"inits": ["spectral"], "factors": [1.0], "steps": 2, "num_samples": 32, "tol": 1e-2,
                                              "seed": 0},
                             "symmetry": {"inits": ["zeros"], "steps": 2, "every": 1, "lr": 0.1, "batch_size": 16, "seed": 0}}}
    context = study.StageContext(results / "data" / "digits.pt.gz", "cpu", workers=1)
    recorder = DeviceRecorder()
    with torch.device("meta"), recorder:
        lr = study.lr_study(STUDY, params, context)
        depth = study.depth_study(DEPTH, params, context)
        measured = [spectra.init_spectra((SPECTRA, params, context, "spectral", 0.3, part)) for part in spectra.PARTS]
        for name in ("lr_stability", "symmetry"):
            run_demo(name, params, results, torch.device("cpu"))
    assert recorder.devices == {"cpu"}
    assert {r["setting"] for r in lr["lr/runs"]} == {"grid", "curvature"}  # both defaults lie on the grid
    assert {r["epochs"] for r in lr["lr/budgets"]} == {1.0, 2.0} and depth["depth/runs"]
    assert [r["state"] for part in measured for r in part["spectra"]] == ["init", "trained"]
