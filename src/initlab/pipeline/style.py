"""One look for every figure: a fixed colour and marker per init and per optimizer, one helper
for axes, legends, bands and captions, and byte-stable PNGs (no timestamps or software versions
in the file), so `dvc repro` reproduces them and a reader can compare figures side by side.
"""

from collections.abc import Sequence
from pathlib import Path
from textwrap import fill
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

# Okabe-Ito colours (colour-blind safe) for the inits compared most; optimizers also own a linestyle,
# so an init x optimizer curve reads as colour = init, line = optimizer.
SERIES_STYLE: dict[str, dict[str, Any]] = {
    "xavier_normal": {"color": "#0072B2", "marker": "o"},
    "xavier_uniform": {"color": "#56B4E9", "marker": "o"},
    "kaiming_normal": {"color": "#D55E00", "marker": "s"},
    "kaiming_uniform": {"color": "#E69F00", "marker": "s"},
    "spectral": {"color": "#009E73", "marker": "^"},
    "spectral_uniform": {"color": "#66C2A5", "marker": "v"},
    "orthogonal": {"color": "#CC79A7", "marker": "D"},
    "jacobian_calibrated": {"color": "#000000", "marker": "<"},
    "lecun": {"color": "#999999", "marker": "P"},
    "lsuv": {"color": "#8C564B", "marker": "X"},
    "metainit": {"color": "#BCBD22", "marker": "*"},
    "zeros": {"color": "#7F7F7F", "marker": "x"},
    "constant": {"color": "#17BECF", "marker": "+"},
    "sparse": {"color": "#9467BD", "marker": ">"},
    "normal": {"color": "#A89500", "marker": "h"},  # Okabe-Ito yellow darkened: visible on white (figure_checks)
    "uniform_fanin": {"color": "#5B84C4", "marker": "d"},
    "sgd": {"color": "#0072B2", "marker": "o", "linestyle": "-"},
    "adam": {"color": "#D55E00", "marker": "s", "linestyle": "--"},
    "momentum": {"color": "#009E73", "marker": "^", "linestyle": "-."},
    "nesterov": {"color": "#CC79A7", "marker": "D", "linestyle": ":"},
    "momentum_lowpass": {"color": "#56B4E9", "marker": "v", "linestyle": (0, (5, 1))},
    "adagrad": {"color": "#E69F00", "marker": "P", "linestyle": (0, (3, 1, 1, 1, 1, 1))},
    "rmsprop": {"color": "#000000", "marker": "X", "linestyle": (0, (1, 1))},
    "rmsprop_nesterov": {"color": "#999999", "marker": "*", "linestyle": (0, (5, 3))},
}
ALIASES = {"gd": "sgd"}  # full-batch gradient descent is plain SGD (book alg. 8.1) on the whole batch
# Series that are neither an init nor an optimizer (learning-rate factors, states, cases) take these in order.
ORDINAL = [{"color": c, "marker": m} for c, m in zip(
    ("#332288", "#882255", "#999933", "#117733", "#AA4499", "#661100"), "osD^vP", strict=True)]
BAND_ALPHA = 0.18
COINCIDES = " (= "  # how a legend label names the series it is drawn on top of
LEGEND_PT = 7  # the smallest text figure_checks allows
CAPTION_WIDTH = 120  # characters per caption line at the default figure width


def series_style(name: str) -> dict[str, Any]:
    """Colour, marker and linestyle of a named series (an init or an optimizer), the same in every figure."""
    name = ALIASES.get(name, name)
    if name in SERIES_STYLE:
        return {"linestyle": "-", **SERIES_STYLE[name]}
    return {"linestyle": "-", **ordinal_style(sum(map(ord, name)))}


def ordinal_style(index: int) -> dict[str, Any]:
    """Colour and marker of the index-th series that is not an init or optimizer (kept off the init colours)."""
    return dict(ORDINAL[index % len(ORDINAL)])


def new_figure(rows: int = 1, cols: int = 1, width: float = 5.0, height: float = 3.8, **subplot_kw: Any) -> tuple[Figure, np.ndarray]:
    """A Figure (no global pyplot state) with a rows x cols grid of axes, always returned as a 2-D array."""
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    return fig, np.atleast_2d(fig.subplots(rows, cols, squeeze=False, **subplot_kw))


def band(ax: Any, x: Sequence[float], mean: Sequence[float], low: Sequence[float], high: Sequence[float],
         label: str, **style: Any) -> None:
    """A line with a shaded band (an interval: std, CI ...; the caption says which); no band where it is unbounded.
    The band does not widen the axes: a wide interval (few seeds) would squash the lines it belongs to."""
    mean, low, high = (np.asarray(v, dtype=float) for v in (mean, low, high))
    ax.plot(x, mean, label=label, **{"markersize": 4} | style)
    lines_only = ax.dataLim.frozen()
    ax.fill_between(x, np.where(np.isfinite(low), low, mean), np.where(np.isfinite(high), high, mean), color=style.get("color"),
                    alpha=BAND_ALPHA, linewidth=0)
    ax.dataLim.set(lines_only)


def dodge(index: int, count: int, width: float) -> float:
    """Offset of the index-th of ``count`` series, centred on 0, so error bars at one x do not hide each other."""
    return width * (index - (count - 1) / 2)


def n_text(counts: Sequence[int], unit: str) -> str:
    """'n = 3 seeds' for a caption ('n = 2-3 seeds' when groups differ); groups with n = 0 (every run diverged: nothing to
    average) are counted apart, not reported as 'n = 0-5'."""
    drawn = [c for c in counts if c]
    low, high = min(drawn, default=0), max(drawn, default=0)
    text = f"n = {low} {unit}" if low == high else f"n = {low}-{high} {unit}"
    empty = len(counts) - len(drawn)
    return text + (f" ({empty} point{'s' * (empty > 1)} with no finite run: every seed diverged)" if empty else "")


def _data_line(handle: Any) -> Any:
    return handle.lines[0] if isinstance(handle, ErrorbarContainer) else handle


def _axes_coordinates(ax: Any, line: Any) -> np.ndarray:
    """The points of a line as fractions of the axes box (so 'coinciding' means 'looks the same')."""
    points = np.column_stack([np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)])
    with np.errstate(all="ignore"):
        return (ax.transScale + ax.transLimits).transform(points)


def mark_coinciding(ax: Any, tolerance: float = 0.01) -> list[tuple[str, str]]:
    """Lines drawn on top of an earlier one (every point within ``tolerance`` of the axes size) get hollow,
    larger markers and '(= <earlier>)' in their legend label, so no series hides silently.
    Returns the (later, earlier) label pairs."""
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits the comparison is made in
    handles, labels = ax.get_legend_handles_labels()
    seen: list[tuple[str, np.ndarray]] = []
    pairs = []
    for handle, label in zip(handles, labels, strict=True):
        line = _data_line(handle)
        if not hasattr(line, "get_xdata") or line.get_transform() is not ax.transData:
            continue
        points = _axes_coordinates(ax, line)
        under = next((earlier for earlier, other in seen if other.shape == points.shape and
                      np.all(np.isnan(other) == np.isnan(points)) and np.nanmax(np.abs(other - points), initial=0.0) < tolerance),
                     None)
        seen.append((label, points))
        if under is not None:
            line.set_markerfacecolor("none")
            size = line.get_markersize()
            line.set_markersize(min(2 * max(size, 4), size + 6))
            handle.set_label(f"{label}{COINCIDES}{under})")
            pairs.append((label, under))
    return pairs


def axes(ax: Any, xlabel: str, ylabel: str, title: str | None = None, legend: bool = True, **legend_kw: Any) -> None:
    """Label an axes, grid it, mark coinciding series and draw its legend (``legend=False``: see :func:`side_legend`)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        mark_coinciding(ax)
        if legend:
            ax.legend(**({"fontsize": LEGEND_PT} | legend_kw))


def side_legend(ax: Any, *sources: Any, extra: Sequence[tuple[Any, str]] = (), series: bool = True) -> None:
    """One legend right of ``ax`` (outside the data) for the series of ``ax`` (unless not ``series``) and of ``sources``
    (other axes: each label once), then ``extra`` (handle, label) pairs such as line-style keys."""
    entries: dict[str, Any] = {}
    shared = bool(sources) or sum(other.has_data() for other in ax.figure.axes) > 1
    for source in ((ax,) if series else ()) + sources:
        for handle, label in zip(*source.get_legend_handles_labels(), strict=True):
            base = label.split(COINCIDES)[0] if shared else label  # '(= other)' holds in one panel, not in the legend of all
            if base not in entries or (COINCIDES in entries[base].get_label() and COINCIDES not in label):
                entries[base] = handle
    entries |= {label: handle for handle, label in extra}
    ax.legend(list(entries.values()), list(entries), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=LEGEND_PT)


def key_handle(label: str, **style: Any) -> tuple[Line2D, str]:
    """A legend-only entry (a black line style, a marker) that no single plotted series owns."""
    return Line2D([], [], **{"color": "k"} | style), label


def log_ticks(axis: Any) -> None:
    """Plain-number ticks on a log axis ('0.03', not '3x10^-2'): 1-2-5 steps within ~one decade, one per decade beyond,
    no minor labels (their scientific labels overlap on short ranges)."""
    low, high = sorted(axis.get_view_interval())
    decades = np.log10(high / low) if low > 0 else np.inf
    subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0, 3.0) if decades < 3 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def finish(fig: Figure, title: str, caption: str) -> Figure:
    """Title above, caption (n, what bands and bars mean) below the figure, both inside the PNG."""
    fig.suptitle(title, fontsize=11)
    fig.text(0.5, 0.0, fill(caption, int(CAPTION_WIDTH * fig.get_figwidth() / 10), break_on_hyphens=False), ha="center", va="top",
             fontsize=8, gid="caption")
    return fig


def describe(fig: Figure) -> tuple[str, str]:
    """(title, caption) that :func:`finish` put on ``fig`` (for the report's figure index)."""
    caption = next(text.get_text() for text in fig.texts if text.get_gid() == "caption")
    return fig.get_suptitle(), " ".join(caption.split("\n"))


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG whose bytes depend only on its content, then close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
