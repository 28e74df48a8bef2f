"""Where the dataset tensors live. Moving them once in ``setup`` removes the per-batch host->device copy."""

from collections.abc import Callable

import torch

# "auto" keeps the data on the CPU unless it takes at most this share of the accelerator's free memory.
AUTO_MEMORY_FRACTION = 0.5

CPU = torch.device("cpu")


def _cpu(trainer_device: torch.device | None, nbytes: int) -> torch.device:
    return CPU


def _cuda(trainer_device: torch.device | None, nbytes: int) -> torch.device:
    if not torch.cuda.is_available():
        raise ValueError("data.device='cuda' but CUDA is not available; use device='cpu' or 'auto'")
    if trainer_device is not None and trainer_device.type == "cuda":
        return trainer_device
    return torch.device("cuda", torch.cuda.current_device())


def _auto(trainer_device: torch.device | None, nbytes: int) -> torch.device:
    if trainer_device is None or trainer_device.type != "cuda":
        return CPU
    free_bytes, _ = torch.cuda.mem_get_info(trainer_device)
    return trainer_device if nbytes <= AUTO_MEMORY_FRACTION * free_bytes else CPU


DEVICE_RESOLVERS: dict[str, Callable[[torch.device | None, int], torch.device]] = {
    "cpu": _cpu,
    "cuda": _cuda,
    "auto": _auto,
}


def check_device_request(request: str) -> None:
    """Fail at construction, not at setup, on an unknown ``device`` value."""
    if request not in DEVICE_RESOLVERS:
        raise ValueError(f"unknown data device {request!r}; valid: {sorted(DEVICE_RESOLVERS)}")


def resolve_device(request: str, trainer_device: torch.device | None, nbytes: int) -> torch.device:
    """The device for ``nbytes`` of data given the config's request and the trainer's root device.

    ``trainer_device`` is None when no trainer is attached (e.g. analysis scripts); under DDP it is
    this rank's device, so every rank keeps its copy on its own GPU.
    """
    check_device_request(request)
    return DEVICE_RESOLVERS[request](trainer_device, nbytes)
