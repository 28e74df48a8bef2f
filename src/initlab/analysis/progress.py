"""Progress of a long curvature analysis on stderr: the quantity being computed, Hessian-vector products done /
planned, time left.

Operators report every product (:func:`count_products`); :func:`stage` names what they are for. Both are
no-ops unless a :class:`Progress` is active (:func:`reporting`), so the library, the spectra stage and the
training callback stay silent. On a terminal a live rich bar per quantity; elsewhere (logs, CI, pipes) one
line per quantity when it ends. Plans are upper bounds (Lanczos stops early once its pairs converge), so
the time left is one too.
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

_ACTIVE: ContextVar["Progress | None"] = ContextVar("initlab_analysis_progress", default=None)


class Progress:
    """Reports quantities to ``stream`` (stderr): a live display when ``interactive`` (default: the stream is a
    TTY), else one line per finished quantity."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None, prefix: str = "analyze") -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.prefix = prefix
        self.done, self.planned = 0, 0
        self._live = None
        self._task = None

    def __enter__(self) -> "Progress":
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Live

            self._live = Live(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
                              TimeElapsedColumn(), TextColumn("left <="), TimeRemainingColumn(),
                              console=Console(file=self.stream), transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def advance(self, products: int) -> None:
        self.done += products
        if self._live is not None and self._task is not None:
            self._live.update(self._task, advance=products, count=self._count())

    def _count(self) -> str:
        return f"{self.done}/{self.planned} products" if self.planned else ""

    @contextmanager
    def quantity(self, name: str, planned: int) -> Iterator[None]:
        """Count the products of computing ``name`` (at most ``planned``: 0 when it needs none)."""
        self.done, self.planned, start = 0, planned, time.perf_counter()
        if self._live is not None:
            self._task = self._live.add_task(name, total=planned or None, count=self._count())
        yield
        seconds = time.perf_counter() - start
        if self._live is not None:
            self._live.update(self._task, total=max(self.done, 1), completed=max(self.done, 1), count=f"{self.done} products")
            self._task = None
        else:
            products = f"{self.done} Hessian-vector products (planned <= {planned}), " if planned else ""
            print(f"{self.prefix}: {name}: {products}{seconds:.1f} s", file=self.stream, flush=True)


@contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` receive the stages and products of the curvature code run inside the block."""
    token = _ACTIVE.set(progress)
    try:
        with progress:
            yield progress
    finally:
        _ACTIVE.reset(token)


@contextmanager
def stage(name: str, planned: int = 0) -> Iterator[None]:
    """The active progress's quantity ``name`` (no-op when none is active)."""
    progress = _ACTIVE.get()
    if progress is None:
        yield
        return
    with progress.quantity(name, planned):
        yield


def count_products(products: int) -> None:
    """Report ``products`` curvature-vector products to the active progress (no-op when none is active)."""
    progress = _ACTIVE.get()
    if progress is not None:
        progress.advance(products)
