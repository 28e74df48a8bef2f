"""SIGINT/SIGTERM end a run as ``interrupted`` with exit code 128 + the signal number, whenever they arrive.

A signal raises :class:`Interrupted` where the program is, except inside :func:`deferred` (a
checkpoint save: raised there, it would land in a file finalizer that discards it) where it is
raised once the block ends. Every signal received is remembered, so a run that returns normally
after one was swallowed somewhere is still recorded as interrupted (:func:`received`). Once the
run's record is final (:func:`settle`) a late signal changes nothing, so the exit code always
agrees with the record (never 143 beside ``done``).
"""

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)
_state: dict[str, int | None] = {"received": None, "deferring": 0, "pending": None, "settled": 0}


class Interrupted(BaseException):
    """A signal received outside the points where Lightning stops on its own (``BaseException`` like ``KeyboardInterrupt``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


def _handler(signum: int, frame: object) -> None:
    if _state["settled"]:
        return
    _state["received"] = signum
    if _state["deferring"]:
        _state["pending"] = signum
    elif signal.getsignal(signum) is _handler:
        raise Interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted`.

    During ``Trainer.fit`` Lightning wraps SIGTERM in its own handler (which calls this one) and
    stops at the end of the step with ``SIGTERMException``: the handler then stays silent, so a
    step is never cut in half by SIGTERM.
    """
    _state["received"], _state["settled"] = None, 0
    previous = {signum: signal.signal(signum, _handler) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the block runs (a file being written and sealed); raise :class:`Interrupted` after it."""
    _state["deferring"] = int(_state["deferring"] or 0) + 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        if not _state["deferring"] and _state["pending"] is not None:
            pending, _state["pending"] = _state["pending"], None
            raise Interrupted(pending)


def settle() -> None:
    """The run's outcome is decided and being (or has been) recorded: later SIGINT/SIGTERM are ignored until the next
    :func:`interruptible` block, so no second signal cuts the record's write or contradicts it."""
    _state["settled"] = 1


def received() -> int | None:
    """The last signal received inside :func:`interruptible` (raised or not), None if none."""
    return _state["received"]


def signal_of(err: BaseException) -> int | None:
    """The signal number behind an exception that ends a run, None for any other exception."""
    if isinstance(err, Interrupted):
        return err.signum
    if isinstance(err, KeyboardInterrupt):
        return signal.SIGINT
    lightning = sys.modules.get("pytorch_lightning.utilities.exceptions")  # Lightning is imported only by the run itself
    if lightning is not None and isinstance(err, lightning.SIGTERMException):
        return signal.SIGTERM
    return None
