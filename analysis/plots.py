"""Chart helpers for the notebooks: paper-ready figures with titles, axis labels and units, always.

Every helper takes plain data (Polars/NumPy/lists), draws one figure with Matplotlib and returns it.
``title``, ``xlabel`` and ``ylabel`` are required keyword arguments, and every helper ends with
:func:`check_figure`, which raises :class:`UnlabelledFigureError` when an axes lacks a title or a
labelled axis - so a figure without units cannot slip into a paper (or past the notebook tests,
which call :func:`check_open_figures` after running each notebook).

Nothing here needs a display: the helpers work with the non-interactive ``Agg`` backend as well as
inside Jupyter. Nothing else in ``analysis`` imports this module (Matplotlib stays optional at
import time for the analysis functions).

Heavy-tailed quantities (cascade sizes, views, lags) are best shown as a complementary CDF on log-log
axes (:func:`ccdf`) or a histogram with log-spaced bins (:func:`histogram` with ``log_x=True``).

Example::

    import analysis
    from analysis import plots

    cascades = analysis.cascades(con)
    fig = plots.ccdf({"all cascades": cascades["forwards"]}, title="Cascade size",
                     xlabel="archived forwards per original post")
    fig.savefig("cascade_size.png")
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Matplotlib settings for figures meant to be read in a paper or on a slide.
STYLE: dict[str, Any] = {
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}

_LINESTYLES = ("-", "--", ":", "-.")

#: A qualitative palette with 20 distinguishable colours (channels, communities).
_PALETTE = [mpl.colormaps["tab20"](i) for i in (*range(0, 20, 2), *range(1, 20, 2))]

Values = Sequence[float] | np.ndarray | Any   # any 1-d array-like: list, NumPy array, Polars/pandas Series


class UnlabelledFigureError(ValueError):
    """A figure lacks a title or an axis label (with its unit)."""


def use_style() -> None:
    """Apply :data:`STYLE` to Matplotlib globally (the notebooks call it once at the top)."""
    rc: Any = mpl.rcParams   # its stubs type every key as a literal
    rc.update(STYLE)


def colour(i: int) -> tuple[float, float, float, float]:
    """The ``i``-th colour of the qualitative palette (cycles after 20)."""
    return _PALETTE[i % len(_PALETTE)]


# -- the label check ---------------------------------------------------------------------------------


def _text(t: Any) -> str:
    return t.get_text().strip() if t is not None else ""


def _is_colorbar(ax: Axes) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def check_figure(fig: Figure) -> None:
    """Raise :class:`UnlabelledFigureError` unless ``fig`` is titled and every visible axis is labelled.

    A figure is titled when it has a suptitle or every visible axes has its own title. Every visible
    axes whose axis lines are on needs an x and a y label (``fig.supxlabel``/``supylabel`` count for
    all its axes); a colour bar needs a label. Axes switched off (``ax.set_axis_off()``, e.g. a network
    drawing) need only the title.
    """
    suptitle = _text(getattr(fig, "_suptitle", None))
    supx = _text(getattr(fig, "_supxlabel", None))
    supy = _text(getattr(fig, "_supylabel", None))
    problems: list[str] = []
    axes = [ax for ax in fig.get_axes() if ax.get_visible()]
    if not axes:
        problems.append("the figure has no axes")
    for n, ax in enumerate(axes):
        name = f"axes {n}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        if _is_colorbar(ax):
            if not (ax.get_ylabel().strip() or ax.get_xlabel().strip()):
                problems.append(f"{name}: colour bar without a label")
            continue
        if not (suptitle or ax.get_title().strip()):
            problems.append(f"{name}: no title (set a title or a suptitle)")
        if not ax.axison:
            continue
        if not (ax.get_xlabel().strip() or supx):
            problems.append(f"{name}: no x-axis label")
        if not (ax.get_ylabel().strip() or supy):
            problems.append(f"{name}: no y-axis label")
    if problems:
        raise UnlabelledFigureError(
            "; ".join(problems) + ". Every figure needs a title and axis labels with units.")


def check_open_figures(*, draw: bool = True, save_to: str | Path | None = None) -> int:
    """Check every figure pyplot still holds with :func:`check_figure`; returns how many there are.

    ``draw`` renders each one to PNG in memory at low resolution (so drawing errors surface);
    ``save_to``: write them there as ``figure-NN.png`` instead, at the style's resolution.
    The notebook tests run this after each notebook (with the ``Agg`` backend, pyplot keeps every
    figure open).
    """
    numbers = plt.get_fignums()
    if save_to is not None:
        Path(save_to).mkdir(parents=True, exist_ok=True)
    for k, num in enumerate(numbers):
        fig = plt.figure(num)
        check_figure(fig)
        if save_to is not None:
            fig.savefig(Path(save_to) / f"figure-{k + 1:02d}.png")
        elif draw:   # a cheap render: drawing errors surface at any resolution
            fig.savefig(BytesIO(), format="png", dpi=30)
    return len(numbers)


# -- shared pieces -----------------------------------------------------------------------------------


def _array(values: Values) -> np.ndarray:
    """A 1-d NumPy array of ``values`` (Polars/pandas Series, lists, arrays)."""
    if hasattr(values, "to_numpy"):
        return np.asarray(values.to_numpy())
    return np.asarray(list(values) if not isinstance(values, np.ndarray) else values)


def _finite(values: Values, *, positive: bool = False) -> np.ndarray:
    a = _array(values).astype(float)
    keep = np.isfinite(a)
    if positive:
        keep &= a > 0
    return a[keep]


def _axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.get_figure()
        assert isinstance(fig, Figure)
        return fig, ax
    fig, new = plt.subplots(figsize=figsize, layout="constrained")
    return fig, new


def _label(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _dates(ax: Axes, axis: str = "x") -> None:
    locator = mdates.AutoDateLocator()
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(locator)
    target.set_major_formatter(mdates.ConciseDateFormatter(locator))


def human(value: float) -> str:
    """A short tick label: 950, 1.2k, 3M, 0.05 (``human(12_500) == '12.5k'``)."""
    v = abs(value)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}" if value else "0"


def _log(ax: Axes, axis: str = "x") -> None:
    """Log scale with plain tick labels (1, 10, 1k; minor ticks labelled when the axis spans little)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")

    def minor(value: float, _pos: int | None) -> str:
        lo, hi = (ax.get_xlim() if axis == "x" else ax.get_ylim())
        few = lo > 0 and hi / lo < 30
        return human(value) if few and str(f"{value:.1g}")[0] in "25" else ""

    target.set_major_formatter(mticker.FuncFormatter(lambda v, _p: human(v)))
    target.set_minor_formatter(mticker.FuncFormatter(minor))


def _plain(ax: Axes, axis: str, values: np.ndarray) -> None:
    """Linear value axis: human tick labels, and integer ticks when the values are counts."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _p: human(v)))
    finite = values[np.isfinite(values)]
    if finite.size and np.all(np.mod(finite, 1) == 0):
        target.set_major_locator(mticker.MaxNLocator(integer=True))


def _done(fig: Figure, ax: Axes | None) -> Figure:
    """Check a figure this helper created; a caller-provided axes is checked by the caller's figure."""
    if ax is None:
        check_figure(fig)
    return fig


def _empty_note(ax: Axes, what: str = "no data") -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")


def subplots(
    nrows: int, ncols: int, *, title: str, xlabel: str | None = None, ylabel: str | None = None,
    figsize: tuple[float, float] | None = None, sharex: bool = False, sharey: bool = False,
) -> tuple[Figure, np.ndarray]:
    """A grid of axes under one suptitle (and shared axis labels, when given) for small multiples.

    Draw into ``axes.flat[i]`` with the helpers' ``ax=`` argument, then call :func:`check_figure`.
    Unused axes are hidden by :func:`hide_unused`.
    """
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, sharex=sharex, sharey=sharey,
                             layout="constrained", squeeze=False)
    fig.suptitle(title, fontweight="bold", fontsize=STYLE["axes.titlesize"])
    if xlabel:
        fig.supxlabel(xlabel, fontsize=STYLE["axes.labelsize"])
    if ylabel:
        fig.supylabel(ylabel, fontsize=STYLE["axes.labelsize"])
    return fig, axes


def hide_unused(axes: np.ndarray, used: int) -> None:
    """Hide the axes after the first ``used`` of a :func:`subplots` grid."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


# -- distributions -----------------------------------------------------------------------------------


def ccdf(
    samples: Mapping[str, Values] | Values,
    *,
    title: str,
    xlabel: str,
    ylabel: str = "share of items with value ≥ x",
    log_x: bool = True,
    log_y: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Complementary CDF, P(X ≥ x), of one sample or several (a mapping label -> values), log-log.

    The standard view of heavy-tailed quantities (cascade sizes, reach, lags): a power law is a
    straight line, and no binning choice hides the tail. Non-finite values (and non-positive ones on
    a log x axis) are dropped; the legend says how many values each curve has.
    """
    fig, ax_ = _axes(ax)
    groups = samples if isinstance(samples, Mapping) else {"": samples}
    drawn = 0
    for i, (label, values) in enumerate(groups.items()):
        x = np.sort(_finite(values, positive=log_x))
        if x.size == 0:
            continue
        y = 1.0 - np.arange(x.size) / x.size
        name = f"{label} (n={x.size:,})" if label else f"n={x.size:,}"
        ax_.step(x, y, where="post", color=colour(i), label=name, linestyle=_LINESTYLES[i % len(_LINESTYLES)])
        drawn += 1
    if drawn == 0:
        _empty_note(ax_)
    if log_x and drawn:
        _log(ax_, "x")
    if log_y and drawn:
        _log(ax_, "y")
    if drawn:
        ax_.legend()
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)


def histogram(
    values: Values,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    bins: int | Sequence[float] = 30,
    log_x: bool = False,
    log_y: bool = False,
    median: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Histogram of ``values``; ``log_x`` uses log-spaced bins over the positive values.

    ``median`` draws and labels the median as a dashed line.
    """
    fig, ax_ = _axes(ax)
    x = _finite(values, positive=log_x)
    if x.size == 0:
        _empty_note(ax_)
    else:
        edges: Any = bins
        if log_x and isinstance(bins, int):
            lo, hi = float(x.min()), float(x.max())
            edges = np.logspace(math.log10(lo), math.log10(hi if hi > lo else lo * 10), bins + 1)
        ax_.hist(x, bins=edges, color=colour(0), edgecolor="white", linewidth=0.5)
        if log_x:
            _log(ax_, "x")
        if log_y:
            _log(ax_, "y")
        if median:
            m = float(np.median(x))
            ax_.axvline(m, color="0.2", linestyle="--", linewidth=1)
            ax_.text(m, 0.97, f" median {human(m)}", transform=ax_.get_xaxis_transform(), va="top",
                     fontsize=9)
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)


# -- relations and series ----------------------------------------------------------------------------


def lines(
    series: Mapping[str, tuple[Values, Values]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    log_y: bool = False,
    marker: str | None = None,
    step: bool = False,
    legend_title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One line per entry of ``series`` (label -> (x, y)); datetime x values get a concise date axis.

    ``step``: draw as steps (counts per period). More than 10 lines: the legend goes outside.
    """
    fig, ax_ = _axes(ax)
    is_time = False
    for i, (label, (xs, ys)) in enumerate(series.items()):
        x, y = _array(xs), _array(ys)
        is_time = (is_time or np.issubdtype(x.dtype, np.datetime64)
                   or (x.size > 0 and isinstance(x[0], datetime)))
        if step:
            ax_.step(x, y, where="post", label=label, color=colour(i))
        else:
            ax_.plot(x, y, marker=marker, markersize=4, label=label, color=colour(i))
    if not series:
        _empty_note(ax_)
    if log_x:
        _log(ax_, "x")
    if log_y:
        _log(ax_, "y")
    if is_time:
        _dates(ax_)
    if len(series) > 1 or legend_title:
        outside = len(series) > 3
        where: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if outside else {}
        ax_.legend(title=legend_title, ncols=2 if len(series) > 20 else 1, **where)
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)


def scatter(
    x: Values,
    y: Values,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    groups: Values | None = None,
    sizes: Values | None = None,
    log_x: bool = False,
    log_y: bool = False,
    alpha: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Scatter of ``y`` against ``x``; ``groups`` (same length, categorical) colours the points and
    adds a legend; ``sizes`` sets marker areas (points²). Points non-positive on a log axis are dropped.
    Many points get smaller, more transparent markers (unless ``alpha`` is given).
    """
    fig, ax_ = _axes(ax)
    xa, ya = _array(x), _array(y)
    keep = np.ones(len(xa), dtype=bool)
    if log_x:
        keep &= np.asarray(xa, dtype=float) > 0
    if log_y:
        keep &= np.asarray(ya, dtype=float) > 0
    many = int(keep.sum()) > 1000
    default_size = 6.0 if many else 16.0
    alpha_ = alpha if alpha is not None else (0.35 if many else 0.7)
    sa = _array(sizes)[keep] if sizes is not None else None
    if groups is None:
        ax_.scatter(xa[keep], ya[keep], s=sa if sa is not None else default_size, alpha=alpha_,
                    color=colour(0), edgecolors="none")
    else:
        ga = _array(groups)[keep]
        for i, g in enumerate(dict.fromkeys(ga.tolist())):
            m = ga == g
            ax_.scatter(xa[keep][m], ya[keep][m], s=sa[m] if sa is not None else default_size, alpha=alpha_,
                        color=colour(i), edgecolors="none", label=str(g))
        if ga.size:   # no point, no group: a legend would be empty (and Matplotlib warns)
            legend = ax_.legend(markerscale=2.0)
            for handle in legend.legend_handles:
                if handle is not None:
                    handle.set_alpha(1.0)
    if not keep.any():
        _empty_note(ax_)
    if log_x:
        _log(ax_, "x")
    if log_y:
        _log(ax_, "y")
    if xa.size and (np.issubdtype(xa.dtype, np.datetime64) or isinstance(xa[0], datetime)):
        _dates(ax_)
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)


def bars(
    labels: Sequence[str] | Values,
    values: Values,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    horizontal: bool = True,
    log_scale: bool | None = None,
    annotate: bool = True,
    colours: Sequence[Any] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Bar chart of ``values`` by ``labels``, in the given order (horizontal: first at the top).

    ``xlabel``/``ylabel`` name the axes as drawn (horizontal: x is the value axis). ``annotate``
    writes each value at its bar's end. ``log_scale``: None (default) chooses a log value axis when
    the positive values span more than two orders of magnitude.
    """
    names = [str(v) for v in _array(labels).tolist()]
    vals = _array(values).astype(float)
    if log_scale is None:
        positive = vals[np.isfinite(vals) & (vals > 0)]
        log_scale = bool(positive.size) and float(positive.max()) / float(positive.min()) > 100
    height = max(2.5, 0.32 * len(names) + 1.2) if horizontal else None
    fig, ax_ = _axes(ax, figsize=(8.0, height) if (horizontal and ax is None and height) else None)
    colour_list = list(colours) if colours is not None else [colour(0)] * len(names)
    if horizontal:
        pos = np.arange(len(names))[::-1]
        ax_.barh(pos, vals, color=colour_list)
        ax_.set_yticks(pos, names)
        ax_.grid(axis="y", visible=False)
        if log_scale:
            _log(ax_, "x")
        else:
            _plain(ax_, "x", vals)
    else:
        pos = np.arange(len(names))
        ax_.bar(pos, vals, color=colour_list)
        ax_.set_xticks(pos, names, rotation=45 if max((len(n) for n in names), default=0) > 6 else 0,
                       ha="right" if max((len(n) for n in names), default=0) > 6 else "center")
        ax_.grid(axis="x", visible=False)
        if log_scale:
            _log(ax_, "y")
        else:
            _plain(ax_, "y", vals)
    if annotate:
        for p, v in zip(pos, vals, strict=True):
            if not np.isfinite(v):
                continue
            text = human(float(v))
            if horizontal:
                ax_.annotate(f" {text}", (v, p), va="center", fontsize=8)
            else:
                ax_.annotate(text, (p, v), ha="center", va="bottom", fontsize=8)
    if not names:
        _empty_note(ax_)
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)


def heatmap(
    matrix: np.ndarray | Sequence[Sequence[float]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    xlabel: str,
    ylabel: str,
    colorbar_label: str,
    annotate: bool = False,
    rotate_x: bool = False,
    cmap: str = "viridis",
    ax: Axes | None = None,
) -> Figure:
    """Heat map of ``matrix`` (rows x columns), e.g. posts by weekday x hour of day, with a colour bar.

    ``annotate`` writes each cell's value (for small matrices); ``rotate_x`` slants long column labels.
    """
    m = np.asarray(matrix, dtype=float)
    fig, ax_ = _axes(ax, figsize=(9.0, max(2.8, 0.35 * m.shape[0] + 1.5)) if ax is None else None)
    image = ax_.imshow(m, aspect="auto", cmap=cmap, interpolation="nearest")
    if rotate_x:
        ax_.set_xticks(np.arange(m.shape[1]), list(col_labels), rotation=55, ha="right",
                       rotation_mode="anchor")
    else:
        ax_.set_xticks(np.arange(m.shape[1]), list(col_labels))
    ax_.set_yticks(np.arange(m.shape[0]), list(row_labels))
    ax_.grid(False)
    bar = fig.colorbar(image, ax=ax_, shrink=0.9)
    bar.set_label(colorbar_label)
    if annotate:
        top = np.nanmax(m) if m.size else 0
        for (r, c), v in np.ndenumerate(m):
            if np.isfinite(v):
                ax_.text(c, r, human(float(v)), ha="center", va="center", fontsize=7,
                         color="white" if v < 0.6 * top else "black")
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)


# -- graphs ------------------------------------------------------------------------------------------


def network(
    graph: Any,
    *,
    title: str,
    weight: str = "weight",
    communities: Sequence[Iterable[Hashable]] | None = None,
    node_size: Mapping[Hashable, float] | None = None,
    labels: Mapping[Hashable, str] | None = None,
    seed: int = 7,
    min_weight: float = 0.0,
    legend_title: str = "community",
    ax: Axes | None = None,
) -> Figure:
    """Draw a (directed) ``networkx`` graph: edge width by ``weight`` (log-scaled), nodes coloured by
    ``communities`` (a list of node sets) and sized by ``node_size`` (node -> value, e.g. subscribers;
    area by square root). Layout: spring layout, seeded, on all edges. Edges lighter than
    ``min_weight`` are not drawn (dense networks become unreadable hairballs); say so in the title.

    Axis lines are off (a layout's coordinates mean nothing), so only the title is required; a
    caption under the plot says what width and size encode.
    """
    import networkx as nx

    fig, ax_ = _axes(ax, figsize=(9.0, 7.5) if ax is None else None)
    ax_.set_axis_off()
    ax_.set_title(title)
    if graph.number_of_nodes() == 0:
        _empty_note(ax_, "no edges")
        return _done(fig, ax)
    undirected = nx.Graph()
    for u, v, d in graph.edges(data=True):
        w = float(d.get(weight, 1.0))
        if undirected.has_edge(u, v):
            undirected[u][v]["weight"] += w
        else:
            undirected.add_edge(u, v, weight=w)
    undirected.add_nodes_from(graph.nodes)
    pos = nx.spring_layout(undirected, weight="weight", seed=seed, k=1.6 / math.sqrt(graph.number_of_nodes()))
    member: dict[Hashable, int] = {}
    for i, group in enumerate(communities or []):
        for node in group:
            member[node] = i
    nodes = list(graph.nodes)
    node_colours = [colour(member[n]) if n in member else (0.6, 0.6, 0.6, 1.0) for n in nodes]
    if node_size:
        top = max(max(node_size.values(), default=1.0), 1.0)
        sizes = [60 + 900 * math.sqrt(max(node_size.get(n, 0.0), 0.0) / top) for n in nodes]
    else:
        sizes = [200.0] * len(nodes)
    drawn = [(u, v, float(d.get(weight, 1.0))) for u, v, d in graph.edges(data=True)
             if float(d.get(weight, 1.0)) >= min_weight]
    weights = np.array([w for _, _, w in drawn])
    scaled = np.log1p(weights) / np.log1p(weights.max()) if weights.size else weights
    if drawn:
        # arrows (curved, so a reciprocal pair shows as two) only for a directed graph: networkx warns when
        # arrow options reach the straight lines it draws for an undirected one
        arrows: dict[str, Any] = (
            {"arrows": True, "arrowsize": 9, "connectionstyle": "arc3,rad=0.08"} if graph.is_directed()
            else {"arrows": False}
        )
        nx.draw_networkx_edges(
            graph, pos, ax=ax_, edgelist=[(u, v) for u, v, _ in drawn], width=list(0.3 + 3.5 * scaled),
            alpha=0.45, edge_color="0.3", node_size=sizes, nodelist=nodes, **arrows,
        )
    nx.draw_networkx_nodes(graph, pos, ax=ax_, nodelist=nodes, node_color=node_colours, node_size=sizes,
                           edgecolors="white", linewidths=0.8)
    if labels is not None:
        for n in nodes:
            x, y = pos[n]
            ax_.annotate(labels.get(n, str(n)), (x, y), xytext=(0, -9), textcoords="offset points",
                         ha="center", va="top", fontsize=8,
                         bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    if communities:
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour(i), markersize=8,
                              label=f"{i + 1} ({len(list(g))} channels)") for i, g in enumerate(communities)]
        ax_.legend(handles=handles, title=legend_title, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _done(fig, ax)


def tree(
    nodes: Any,
    *,
    title: str,
    names: Mapping[int, str] | None = None,
    xlabel: str = "time after the original post (hours)",
    ylabel: str = "inferred depth (hops from the original)",
    log_x: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Draw one inferred diffusion tree: each post at (hours after the origin, depth), joined to its
    inferred parent; ``nodes`` is the :func:`analysis.diffusion_trees` rows of one cascade (a Polars
    frame with ``node``, ``parent_node``, ``depth``, ``posted_at``, ``channel_id``). Points are coloured
    by channel; ``names`` (channel id -> name) labels the legend. Parents are drawn dashed to say
    they are inferred, not observed.
    """
    fig, ax_ = _axes(ax)
    rows = list(nodes.iter_rows(named=True))
    if not rows:
        _empty_note(ax_)
        _label(ax_, title, xlabel, ylabel)
        return _done(fig, ax)
    t0 = min(r["posted_at"] for r in rows if r["node"] == 0)
    hours = {r["node"]: (r["posted_at"] - t0).total_seconds() / 3600.0 for r in rows}
    depth = {r["node"]: r["depth"] for r in rows}
    if log_x:   # the origin sits at 0: draw it at a small positive offset
        floor = min((h for h in hours.values() if h > 0), default=1.0) / 2
        hours = {k: max(v, floor) for k, v in hours.items()}
    # Spread nodes of equal depth vertically a little so overlapping posts stay visible.
    seen: dict[int, int] = {}
    jitter: dict[int, float] = {}
    for r in sorted(rows, key=lambda r: r["node"]):
        k = seen.get(r["depth"], 0)
        seen[r["depth"]] = k + 1
        jitter[r["node"]] = 0.0 if r["node"] == 0 else ((k % 7) - 3) * 0.06
    for r in rows:
        p = r["parent_node"]
        if p is not None:
            k = r["node"]
            ax_.plot([hours[p], hours[k]], [depth[p] + jitter[p], depth[k] + jitter[k]],
                     color="0.55", linestyle="--", linewidth=0.8, zorder=1)
    channel_order = list(dict.fromkeys(r["channel_id"] for r in sorted(rows, key=lambda r: r["node"])))
    for i, channel in enumerate(channel_order):
        pts = [r for r in rows if r["channel_id"] == channel]
        label = (names or {}).get(channel, str(channel))
        ax_.scatter([hours[r["node"]] for r in pts], [depth[r["node"]] + jitter[r["node"]] for r in pts],
                    s=[90 if r["node"] == 0 else 36 for r in pts], color=colour(i), zorder=2,
                    edgecolors="white", linewidths=0.6, label=label)
    ax_.invert_yaxis()
    ax_.yaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    if log_x:
        ax_.set_xscale("log")
    if len(channel_order) <= 20:
        ax_.legend(title="channel", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _label(ax_, title, xlabel, ylabel)
    return _done(fig, ax)
