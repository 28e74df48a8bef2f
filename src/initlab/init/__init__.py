"""Weight and bias initializers (docs/methods.md), data-aware rescalings and the init report.

A ``conf/init/<name>.yaml`` instantiates :class:`Initializer`; the registries map config names
to functions, so a new scheme is one function plus one YAML file.
"""

from initlab.init.biases import BIAS_INITS, BiasContext
from initlab.init.data_aware import DATA_AWARE_INITS, DataAwareInit, gradient_quotient
from initlab.init.initializer import Initializer
from initlab.init.report import init_report
from initlab.init.weights import WEIGHT_INITS, fans, spectral_std

__all__ = [
    "BIAS_INITS",
    "DATA_AWARE_INITS",
    "WEIGHT_INITS",
    "BiasContext",
    "DataAwareInit",
    "Initializer",
    "fans",
    "gradient_quotient",
    "init_report",
    "spectral_std",
]
