"""The one model builder: a ``conf/model`` node -> an eager ``nn.Module``."""

from typing import Any

from torch import nn

# Keys of a model node that configure the run around the model, not the model's constructor.
RUN_KEYS = ("compile",)


def instantiate_model(model_cfg: Any) -> nn.Module:
    """The uncompiled ``nn.Module`` of ``model_cfg`` (``compile`` is applied by the training module)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)
    for key in RUN_KEYS:
        node.pop(key, None)
    return instantiate(node)
