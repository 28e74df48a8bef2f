"""Optimizers and learning-rate schedules (docs/methods.md; book ch. 8 alg. 8.1-8.7).

``OPTIMIZERS[name](params, lr=..., <book hyperparameters>)`` returns a ``torch.optim.Optimizer``;
``SCHEDULES[name](optimizer, total_steps=..., ...)`` a per-step ``LRScheduler``. The keys match
``conf/optim/*.yaml`` and ``conf/sched/*.yaml``.

| name             | implementation                                          | exact under a schedule |
|------------------|---------------------------------------------------------|------------------------|
| sgd              | torch.optim.SGD                                         | yes                    |
| momentum         | ours (torch SGD momentum keeps eps outside the velocity) | yes                    |
| momentum_lowpass | torch.optim.SGD(lr=eta*beta, momentum=1-beta)           | yes                    |
| nesterov         | ours (torch nesterov=True: same, for constant eps only) | yes                    |
| adagrad          | torch.optim.Adagrad(eps=delta, lr_decay=0, acc. 0)      | yes                    |
| rmsprop          | ours (delta inside the square root)                     | yes                    |
| rmsprop_nesterov | ours (torch has none)                                   | yes                    |
| adam             | torch.optim.Adam(betas=(rho1, rho2), eps=delta)         | yes                    |
"""

from collections.abc import Callable

from torch.optim import Optimizer

from initlab.optim.book import Momentum, Nesterov, RMSProp, RMSPropNesterov
from initlab.optim.schedules import SCHEDULES
from initlab.optim.torch_backed import adagrad, adam, momentum_lowpass, sgd

OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd,
    "momentum": Momentum,
    "momentum_lowpass": momentum_lowpass,
    "nesterov": Nesterov,
    "adagrad": adagrad,
    "rmsprop": RMSProp,
    "rmsprop_nesterov": RMSPropNesterov,
    "adam": adam,
}

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Momentum",
    "Nesterov",
    "RMSProp",
    "RMSPropNesterov",
    "adagrad",
    "adam",
    "momentum_lowpass",
    "sgd",
]
