"""PNG of the coverage curve with the recommended head marked, so a person sees why.

The x axis (head size k) is logarithmic: peaked workloads gain most of their coverage in the
first few keys and a linear axis would squeeze that into one pixel column. Both curves are
drawn: the held-out estimate the decision used, and the observed in-sample coverage, whose gap
shows how much of the log's apparent concentration is keys seen once by chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.figures import WorkloadFigures
from modelrollout.advisor.peakedness import CoverageCurve
from modelrollout.advisor.recommend import Recommendation

_MAX_POINTS = 2000  # a curve of 10^7 keys is drawn from this many log-spaced points


def plot_coverage(figures: WorkloadFigures, recommendation: Recommendation, path: str | Path) -> Path:
    """Write the coverage plot to `path` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=100)
    axes = figure.add_subplot()
    _draw(axes, figures.coverage, label="estimated hit ratio (held out)", color="tab:blue")
    if figures.observed_coverage is not None:
        _draw(
            axes,
            figures.observed_coverage,
            label="observed coverage (in sample)",
            color="tab:gray",
            style="--",
        )
    hybrid = recommendation.estimate("hybrid")
    k = recommendation.head_size if recommendation.mode == "hybrid" else hybrid.stored_keys
    if k and k > 0:
        hit = figures.coverage.hit_ratio_at(k)
        chosen = recommendation.mode == "hybrid"
        color = "tab:red" if chosen else "tab:orange"
        axes.axvline(k, color=color, linewidth=1.2)
        axes.plot([k], [hit], "o", color=color)
        what = "recommended head" if chosen else "best hybrid head (not chosen)"
        axes.annotate(
            f"{what}\nk = {k:,}, hit ratio {hit:.1%}",
            xy=(k, hit),
            xytext=(0.03, 0.55),
            textcoords="axes fraction",
            arrowprops={"arrowstyle": "->", "color": color},
        )
    if recommendation.required_hit_ratio:
        axes.axhline(
            recommendation.required_hit_ratio, color="tab:green", linestyle=":", label="needed for p99 target"
        )
    axes.set_xscale("log")
    axes.set_xlim(left=1, right=max(figures.cardinality, 2))
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("head size k (most requested keys, log scale)")
    axes.set_ylabel("share of requests answered by the head")
    summary = figures.summary()
    share = "n/a" if summary.top1_percent_share is None else f"{summary.top1_percent_share:.1%}"
    axes.set_title(
        f"recommendation: {recommendation.mode}   "
        f"(top 1% of {figures.cardinality:,} keys serve {share} of requests)",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    path = Path(path)
    try:
        figure.savefig(path, format="png")
    except OSError as err:
        raise AdvisorError(f"cannot write plot {path}: {err.strerror or err}") from err
    return path


def _draw(axes, curve: CoverageCurve, *, label: str, color: str, style: str = "-") -> None:
    sizes, hits = curve.head_sizes, curve.hit_ratios
    if sizes.size < 2:
        return
    picks = np.unique(np.geomspace(1, sizes.size - 1, num=min(_MAX_POINTS, sizes.size - 1)).astype(np.int64))
    marker = "o" if picks.size < 3 else None  # a live curve is a single measured point
    axes.step(
        sizes[picks], hits[picks], where="post", linestyle=style, color=color, label=label, marker=marker
    )
