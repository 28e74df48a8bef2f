"""What a reader sees in two seconds, checked on a rendered figure: ``check_figure(fig) -> list[str]`` of defects.

    defects = check_figure(fig)          # [] when the figure is clean; one line per defect otherwise

Rules (:data:`RULES`, each a function of the drawn figure): no text below :data:`MIN_FONT_PT`; no two texts (tick labels,
axis labels, titles, annotations, legends, suptitle, caption) overlapping; no legend over a plotted point (line vertices,
markers, scatter offsets, bar tops, of any panel); no empty panel (every visible axes shows a data artist with a finite
point inside its limits); no line, marker, bar or text too light to see on white (WCAG contrast ratio); and no trend word
in a title ("sharpening", "falls", ...) that no :func:`claim` ties to a plotted series rising or falling as the word says.
The figure is drawn once (Agg, at its own size and dpi) and every rule reads that one layout.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

MIN_FONT_PT = 7.0
MIN_CONTRAST = {"text": 3.0, "mark": 1.8}  # vs white: text must read, a line / marker / bar must be seen (WCAG ratios)
OVERLAP_PX = 1.0  # texts overlap when their boxes share more than this many pixels of height and come this close in width
TRENDS = {  # title word -> the sign of the trend (last vs first value) of the series it is claimed about
    **dict.fromkeys(("sharpening", "grows", "grow", "rises", "rise", "increases", "explodes", "exploding"), +1),
    **dict.fromkeys(("falls", "fall", "decreases", "shrinks", "flattening", "vanishes", "vanishing", "decays"), -1),
}
CLAIMS_ATTR = "_initlab_claims"  # where :func:`claim` keeps a figure's checkable title words


@dataclass(frozen=True)
class Claim:
    """A title word about one plotted series: ``word`` (a key of :data:`TRENDS`) holds for the line ``label`` in ``ax``."""

    word: str
    ax: Axes
    label: str


def claim(fig: Figure, word: str, ax: Axes, label: str) -> None:
    """Record that the figure's title says ``word`` about the line labelled ``label`` (checked by :func:`check_figure`)."""
    if word.lower() not in TRENDS:
        raise ValueError(f"claim word {word!r} is not checkable; allowed: {sorted(TRENDS)}")
    if not hasattr(fig, CLAIMS_ATTR):
        setattr(fig, CLAIMS_ATTR, [])
    getattr(fig, CLAIMS_ATTR).append(Claim(word.lower(), ax, label))


def trend(values: Any) -> int:
    """+1 rising, -1 falling, 0 flat: the sign of last over first finite value (relative change above 5%)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) < 2:
        return 0
    first, last = finite[0], finite[-1]
    change = (last - first) / max(abs(first), abs(last), 1e-300)
    return 0 if abs(change) < 0.05 else int(np.sign(change))


# ---------------------------------------------------------------- what is on the canvas


def render(fig: Figure) -> Any:
    """Draw ``fig`` once with Agg (layout engine included) and return the renderer the rules measure with."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _shown(artist: Any) -> bool:
    return artist.get_visible() and (artist.axes is None or artist.axes.get_visible())


def _drawn_ticklabels(axis: Any) -> Iterator[Text]:
    """The tick labels the axis drew: ticks inside the view interval with a non-empty visible label."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) or 1.0
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if low - 1e-9 * span <= tick.get_loc() <= high + 1e-9 * span:
            for label in (tick.label1, tick.label2):
                if label.get_visible() and label.get_text().strip():
                    yield label


def _axes_texts(ax: Axes) -> Iterator[tuple[str, Text]]:
    for label in _drawn_ticklabels(ax.xaxis):
        yield "x tick label", label
    for label in _drawn_ticklabels(ax.yaxis):
        yield "y tick label", label
    yield "x axis label", ax.xaxis.label
    yield "y axis label", ax.yaxis.label
    for title in (ax.title, ax._left_title, ax._right_title):
        yield "axes title", title
    for text in ax.texts:
        yield "annotation", text


def texts(fig: Figure) -> Iterator[tuple[str, Text]]:
    """Every drawn text with its kind (legend texts included)."""
    for ax in fig.axes:
        if ax.get_visible():
            yield from ((kind, t) for kind, t in _axes_texts(ax) if t.get_visible() and t.get_text().strip())
    for text in fig.texts:
        if text.get_visible() and text.get_text().strip():
            yield ("suptitle" if text is fig._suptitle else "figure text"), text
    for legend in legends(fig):
        yield from (("legend text", t) for t in legend.get_texts() if t.get_visible() and t.get_text().strip())
        if legend.get_title().get_text():
            yield "legend title", legend.get_title()


def legends(fig: Figure) -> list[Legend]:
    return [lg for lg in [ax.get_legend() for ax in fig.axes if ax.get_visible()] + list(fig.legends) if lg and lg.get_visible()]


def _name(kind: str, text: Text) -> str:
    where = f" of '{text.axes.get_title()}'" if text.axes is not None and text.axes.get_title() else ""
    return f"{kind} '{text.get_text()[:40]}'{where}"


def data_points(ax: Axes) -> np.ndarray:
    """Display coordinates (n x 2) of every finite plotted point of ``ax`` inside its limits: line vertices and markers,
    scatter offsets, bar tops. Reference lines (axhline / axvline, not in data coordinates) and bands are not data points."""
    points = []
    for line in ax.get_lines():
        if _shown(line) and line.get_transform() == ax.transData:
            xy = np.column_stack([np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)])
            points.append(_along_segments(ax, xy) if line.get_linestyle() not in ("None", "", " ") else xy)
    for collection in ax.collections:
        if _shown(collection) and isinstance(collection, PathCollection) and collection.get_offset_transform() == ax.transData:
            points.append(np.asarray(collection.get_offsets(), dtype=float).reshape(-1, 2))
    for patch in ax.patches:
        if _shown(patch) and isinstance(patch, Rectangle) and patch.get_transform() == ax.transData and patch.get_height():
            x, y, w, h = patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()
            points.append(np.array([[x + w / 2, y + h]]))
    if not points:
        return np.empty((0, 2))
    xy = np.concatenate(points)
    with np.errstate(all="ignore"):
        display = ax.transData.transform(xy)
        inside = ax.transAxes.inverted().transform(display)
    keep = np.all(np.isfinite(display), axis=1) & np.all((inside >= -1e-6) & (inside <= 1 + 1e-6), axis=1)
    return display[keep]


def _along_segments(ax: Axes, xy: np.ndarray, per_segment: int = 8) -> np.ndarray:
    """The vertices of a drawn line and points along each segment between finite neighbours (straight in display space),
    back in data coordinates: a legend over a segment covers data as much as one over a vertex."""
    with np.errstate(all="ignore"):
        display = ax.transData.transform(xy)
    finite = np.all(np.isfinite(display), axis=1)
    pairs = finite[:-1] & finite[1:]
    t = np.linspace(0, 1, per_segment, endpoint=False)[1:, None, None]
    between = (display[:-1][pairs] * (1 - t) + display[1:][pairs] * t).reshape(-1, 2)
    return np.concatenate([xy, ax.transData.inverted().transform(between)]) if len(between) else xy


def _has_data(ax: Axes) -> bool:
    """A plotted point inside the limits, or another drawn collection (contours, bands) with a finite extent, or an image."""
    others = [c for c in ax.collections if _shown(c) and not isinstance(c, PathCollection)]
    return (len(data_points(ax)) > 0 or any(np.isfinite(c.get_datalim(ax.transData).bounds).all() for c in others)
            or any(_shown(image) for image in ax.images))


def _contrast(color: Any, alpha: float | None = None) -> float:
    """WCAG contrast ratio of ``color`` (alpha-blended on white; ``alpha``: the artist's, overriding) against white;
    1 for no colour."""
    if color is None or (isinstance(color, str) and color.lower() == "none"):
        return 1.0
    r, g, b, a = to_rgba(color, alpha)
    linear = [(1 - a) + a * c for c in (r, g, b)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in linear]
    return 1.05 / (0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2] + 0.05)


# ---------------------------------------------------------------- the rules


def small_text(fig: Figure, renderer: Any) -> list[str]:
    return [f"text below {MIN_FONT_PT:g} pt ({t.get_fontsize():.3g} pt): {_name(kind, t)}" for kind, t in texts(fig)
            if t.get_fontsize() < MIN_FONT_PT]


def _boxes(fig: Figure, renderer: Any) -> list[tuple[str, Any, Bbox]]:
    """(name, group, display box) of every text and legend; texts inside one legend share its group (never compared)."""
    inside_legends = {id(t): lg for lg in legends(fig) for t in [*lg.get_texts(), lg.get_title()]}
    out = [(_name(kind, t), inside_legends.get(id(t), t), t.get_window_extent(renderer)) for kind, t in texts(fig)
           if not kind.startswith("legend")]
    out += [(f"legend ({', '.join(t.get_text()[:20] for t in lg.get_texts()[:2])}...)", lg, lg.get_window_extent(renderer))
            for lg in legends(fig)]
    return out


def overlapping_text(fig: Figure, renderer: Any) -> list[str]:
    defects = []
    for (a, group_a, box_a), (b, group_b, box_b) in combinations(_boxes(fig, renderer), 2):
        if group_a is group_b or box_a.width <= 0 or box_b.width <= 0:
            continue
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > -OVERLAP_PX and height > OVERLAP_PX:  # side by side on one line with no gap reads as one word
            defects.append(f"overlapping text: {a} and {b}")
    return defects


def legend_over_data(fig: Figure, renderer: Any) -> list[str]:
    defects = []
    for legend in legends(fig):
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if not ax.get_visible():
                continue
            points = data_points(ax)
            covered = int(np.sum((points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)))
            if covered:
                defects.append(f"legend over data: {covered} plotted point(s) of '{ax.get_title()}' under the legend "
                               f"({', '.join(t.get_text()[:20] for t in legend.get_texts()[:2])}...)")
    return defects


def empty_panel(fig: Figure, renderer: Any) -> list[str]:
    return [f"empty panel: '{ax.get_title()}' ({ax.get_xlabel()} / {ax.get_ylabel()}) shows no finite data" for ax in fig.axes
            if ax.get_visible() and ax.axison and not _has_data(ax)]


def _marks(fig: Figure) -> Iterator[tuple[str, Any, list[Any]]]:
    """(name, artist, colours any one of which makes it visible) of each line, marker set and bar."""
    for ax in fig.axes:
        for line in ax.get_lines():
            if _shown(line):
                colours = [line.get_color()] if line.get_linestyle() not in ("None", "", " ") else []
                if line.get_marker() not in ("None", "", " ", None):
                    colours += [line.get_markerfacecolor(), line.get_markeredgecolor()]
                yield f"line '{line.get_label()}' of '{ax.get_title()}'", line, colours
        for patch in ax.patches:
            if _shown(patch) and isinstance(patch, Rectangle) and patch.get_transform() == ax.transData:
                yield f"bar '{patch.get_label()}' of '{ax.get_title()}'", patch, [patch.get_facecolor(), patch.get_edgecolor()
                                                                                  if patch.get_linewidth() else None]


def too_light(fig: Figure, renderer: Any) -> list[str]:
    defects = [f"text too light (contrast {_contrast(t.get_color()):.2f} < {MIN_CONTRAST['text']}): {_name(kind, t)}"
               for kind, t in texts(fig) if _contrast(t.get_color()) < MIN_CONTRAST["text"]]
    for name, artist, colours in _marks(fig):
        best = max((_contrast(c, artist.get_alpha()) for c in colours), default=1.0)
        if colours and best < MIN_CONTRAST["mark"]:
            defects.append(f"colour too light (contrast {best:.2f} < {MIN_CONTRAST['mark']}): {name}")
    return defects


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def title_claims(fig: Figure, renderer: Any) -> list[str]:
    claims: list[Claim] = getattr(fig, CLAIMS_ATTR, [])
    titles = " ".join([fig.get_suptitle()] + [ax.get_title() for ax in fig.axes if ax.get_visible()])
    defects = [f"title says '{word}' but no series is claimed to show it (figure_checks.claim)" for word in dict.fromkeys(_words(titles))
               if word in TRENDS and word not in {c.word for c in claims}]
    for c in claims:
        if c.word not in _words(titles):
            defects.append(f"claim '{c.word}' about '{c.label}' is not in any title")
        lines = [line for line in c.ax.get_lines() if line.get_label().split(" (= ")[0] == c.label]
        if not lines:
            defects.append(f"claim '{c.word}': no line labelled '{c.label}' in '{c.ax.get_title()}'")
            continue
        order = np.argsort(np.asarray(lines[0].get_xdata(), dtype=float), kind="stable")
        seen = trend(np.asarray(lines[0].get_ydata(), dtype=float)[order])
        if seen != TRENDS[c.word]:
            defects.append(f"title says '{c.word}' but '{c.label}' {({1: 'rises', -1: 'falls', 0: 'stays flat'})[seen]}")
    return defects


RULES: dict[str, Callable[[Figure, Any], list[str]]] = {
    "small_text": small_text,
    "overlapping_text": overlapping_text,
    "legend_over_data": legend_over_data,
    "empty_panel": empty_panel,
    "too_light": too_light,
    "title_claims": title_claims,
}


def check_figure(fig: Figure, rules: dict[str, Callable[[Figure, Any], list[str]]] = RULES) -> list[str]:
    """Every defect of ``fig`` under ``rules`` (one line each, prefixed by the rule's name); [] for a clean figure."""
    renderer = render(fig)
    return [f"{name}: {defect}" for name, rule in rules.items() for defect in rule(fig, renderer)]
