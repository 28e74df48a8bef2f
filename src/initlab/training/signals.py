"""SIGINT/SIGTERM end a run as ``interrupted`` with exit code 128 + the signal number."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal received outside the points where Lightning stops on its own (``BaseException`` like ``KeyboardInterrupt``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted`.

    During ``Trainer.fit`` Lightning wraps SIGTERM in its own handler (which calls this one) and
    stops at the end of the step with ``SIGTERMException``: the handler then stays silent, so a
    step is never cut in half by SIGTERM.
    """

    def handler(signum: int, frame: object) -> None:
        if signal.getsignal(signum) is handler:
            raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def signal_of(err: BaseException) -> int | None:
    """The signal number behind an exception that ends a run, None for any other exception."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    if isinstance(err, Interrupted):
        return err.signum
    if isinstance(err, SIGTERMException):
        return signal.SIGTERM
    if isinstance(err, KeyboardInterrupt):
        return signal.SIGINT
    return None
