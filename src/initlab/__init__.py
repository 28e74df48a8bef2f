"""initlab: initialization, optimizers and curvature of neural networks, reproducibly."""

__version__ = "0.1.0"
