"""Checkpoints that are never lost or corrupted silently: verified and hashed after each save, checked before a resume."""

import hashlib
import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

from initlab.errors import ConfigError
from initlab.files import atomic_write
from initlab.schema import problem

log = logging.getLogger(__name__)
_restarts: set[str] = set()  # run dirs already told that ckpt_path=last starts them over
# What a run dir holds once a run has started in it (signs that ``ckpt_path=last`` found a run that saved no epoch yet):
# its record (any status: one stopped while starting says so), its history, a checkpoint that was never sealed.
STARTED = ("metrics.json", "history.csv", "checkpoints/last.ckpt.part", "checkpoints/interrupted.ckpt")


def bad_checkpoint(path: str | Path, allowed: str) -> ConfigError:
    """The one line for a checkpoint that cannot be used."""
    return ConfigError(problem("ckpt_path", str(path), allowed))


def digest_path(path: str | Path) -> Path:
    """``<name>.ckpt.sha256`` beside the checkpoint (``sha256sum -c`` reads it)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def sha256(path: str | Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def part_path(path: str | Path) -> Path:
    """Where a checkpoint is written before it is verified and moved to ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".part")


def _hashes(digest_file: Path) -> list[str]:
    """The hashes listed in a digest file (bytes that are not UTF-8 read as no hash)."""
    text = digest_file.read_bytes().decode("utf-8", errors="replace") if digest_file.is_file() else ""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _write_digest(path: Path, hashes: list[str]) -> None:
    atomic_write(digest_path(path), "".join(f"{h}  {path.name}\n" for h in hashes))


def commit_checkpoint(path: str | Path) -> Path:
    """Prove the checkpoint just saved at ``part_path(path)`` is whole, then move it to ``path`` with its sha256.

    Whole: a complete zip archive whose CRCs match; else ``RuntimeError`` and the run ends
    ``failed`` with the reason instead of ``done`` without its checkpoint. The digest file lists
    the old and the new hash while the file is moved, so a kill at any moment leaves a
    checkpoint that verifies.
    """
    path, part = Path(path), part_path(path)
    try:
        if not part.is_file() or part.stat().st_size == 0:
            raise RuntimeError(f"checkpoint {path} was not written (is {path.parent} a writable folder?)")
        try:
            with zipfile.ZipFile(part) as archive:
                broken = archive.testzip()
        except zipfile.BadZipFile as err:
            raise RuntimeError(f"checkpoint {path} is incomplete: {err}") from err
        if broken is not None:
            raise RuntimeError(f"checkpoint {path} is corrupted (member {broken})")
        new = sha256(part)
        _write_digest(path, [new, *_hashes(digest_path(path))[:1]])
        part.replace(path)
        _write_digest(path, [new])
    except BaseException:
        remove_partial(path.parent)
        raise
    return path


def remove_partial(folder: str | Path) -> None:
    """Delete the ``*.part`` and ``*.tmp`` files a failed or interrupted write left in ``folder`` (links only unlinked)."""
    if Path(folder).is_symlink():
        return
    for leftover in [*Path(folder).glob("*.part"), *Path(folder).glob("*.tmp")]:
        leftover.unlink(missing_ok=True)


def resume_path(ckpt_path: str | None, output_dir: Path) -> Path | None:
    """The verified checkpoint a run starts from, None for a fresh start (``last``: this run dir's ``last.ckpt``).

    ``last`` in a run dir where a run started but never completed a checkpoint (stopped while starting or
    during its first epoch or save: a record, history, ``interrupted.ckpt`` or a ``.part`` but no ``last.ckpt``)
    is a clean restart from scratch, said in one line; the next save replaces what was left.
    """
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path != "last":
        return verified_checkpoint(ckpt_path)
    path = output_dir / "checkpoints" / "last.ckpt"
    if not os.path.lexists(path) and not os.path.lexists(digest_path(path)) and \
            any(os.path.lexists(output_dir / p) for p in STARTED):
        if str(output_dir) not in _restarts:  # validation and the run both ask: said once
            _restarts.add(str(output_dir))
            log.warning("ckpt_path=last: %s holds no saved checkpoint (the run stopped before its first); starting it over",
                        output_dir)
        return None
    return verified_checkpoint(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A verified checkpoint's content, loaded weights-only (tensors and plain values, never code); ConfigError if it is
    not a training checkpoint (empty, truncated, a system file, a pickle of objects)."""
    import torch

    import initlab.optim  # noqa: F401  (registers the schedule classes stored in checkpoints as safe)

    try:
        with warnings.catch_warnings():  # torch's note on a legacy pickle's protocol: the error below says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0][:120]
        raise bad_checkpoint(path, f"is not a readable training checkpoint ({type(err).__name__}: {reason})") from None
    if not isinstance(content, dict) or not isinstance(content.get("state_dict"), dict):
        raise bad_checkpoint(path, "is not a training checkpoint (no state_dict)")
    if bad := non_finite(content["state_dict"]):
        raise bad_checkpoint(path, f"holds non-finite weights ({bad} has NaN or inf): a diverged run's weights "
                                   "cannot be resumed or analysed")
    return content


def non_finite(state_dict: dict[str, Any]) -> str | None:
    """The first floating-point tensor in ``state_dict`` with a NaN or inf, None if all are finite."""
    import torch

    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def _settings(param_groups: list[dict[str, Any]]) -> list[str]:
    """The optimizer's hyperparameter names: what tells one optimizer kind from another."""
    return sorted({k for group in param_groups for k in group if k not in ("params", "lr", "initial_lr")})


def check_fit(path: str | Path, model: Any, optimizer: Any = None) -> dict[str, Any]:
    """The checkpoint's content if it fits ``model`` (same parameter names and shapes) and, when given, ``optimizer``
    (same kind: the same hyperparameter names, the same number of parameters); else one ConfigError line."""
    content = load_checkpoint(path)
    prefix = "model."
    saved = {k[len(prefix):]: tuple(v.shape) for k, v in content["state_dict"].items() if k.startswith(prefix) and hasattr(v, "shape")}
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if saved != wanted:
        first = next((f"{k}: {saved.get(k, 'absent')} in the checkpoint, {wanted.get(k, 'absent')} in this model"
                      for k in sorted(saved.keys() | wanted.keys())
                      if saved.get(k) != wanted.get(k)))
        raise bad_checkpoint(path, f"holds another model than model= of this config ({first})")
    if optimizer is not None:
        states = content.get("optimizer_states") or [{}]
        groups = states[0].get("param_groups", []) if isinstance(states[0], dict) else []
        saved_kind, wanted_kind = _settings(groups), _settings(optimizer.state_dict()["param_groups"])
        counts = sum(len(g.get("params", [])) for g in groups), sum(len(g["params"]) for g in optimizer.param_groups)
        if saved_kind != wanted_kind or counts[0] != counts[1]:
            raise bad_checkpoint(path, f"was saved by another optimizer (settings {saved_kind}, {counts[0]} "
                                       f"parameters) than optim= of this run ({wanted_kind}, {counts[1]})")
    return content


def verified_checkpoint(path: str | Path) -> Path:
    """``path`` if its sha256 is the one written beside it when it was saved; a ConfigError otherwise."""
    path = Path(path)
    digest_file = digest_path(path)
    if not path.is_file():
        raise bad_checkpoint(path, "no checkpoint there (to resume a run: ckpt_path=last hydra.run.dir=<its run dir>)")
    if not digest_file.is_file():
        raise bad_checkpoint(path, f"has no {digest_file.name}, so it cannot be verified; refusing to load it")
    if sha256(path) not in _hashes(digest_file):
        raise bad_checkpoint(path, f"does not match its sha256 in {digest_file.name} (corrupted or changed); "
                                   "refusing to load it")
    return path
