"""The coverage plot is a real, non-blank PNG with the recommended head marked."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from matplotlib import colors
from matplotlib import image as mpimg

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.figures import figures_from_log
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams
from modelrollout.advisor.plot import plot_coverage
from modelrollout.advisor.recommend import recommend
from modelrollout.advisor.workload import KeyCounts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def advised(keys: np.ndarray, **costs):
    distinct, counts = np.unique(keys, return_counts=True)
    key_counts = KeyCounts(
        keys=pa.table({"key": distinct}), counts=counts, key_columns=("key",), total_requests=int(counts.sum()),
        rows_without_key=0, first_timestamp=0.0, last_timestamp=86400.0, mean_key_bytes=8.0,
    )  # fmt: skip
    figures = figures_from_log(key_counts)
    return figures, recommend(figures, ModelFacts(), CostParams(**costs))


def pixels_of(path, color: str) -> int:
    rgb = mpimg.imread(path)[..., :3]
    return int(np.count_nonzero(np.all(np.abs(rgb - np.array(colors.to_rgb(color))) < 0.03, axis=-1)))


@pytest.fixture(scope="module")
def zipf_keys() -> np.ndarray:
    p = np.arange(1, 10**5 + 1, dtype=float) ** -1.1
    return np.random.default_rng(8).choice(10**5, size=3 * 10**5, p=p / p.sum())


def test_hybrid_plot_is_a_non_blank_png_with_the_head_marked(tmp_path, zipf_keys):
    figures, advice = advised(zipf_keys, staleness_hours=2.0)
    assert advice.mode == "hybrid"
    path = plot_coverage(figures, advice, tmp_path / "coverage.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    image = mpimg.imread(path)
    assert image.shape[:2] == (500, 800)
    assert float(image[..., :3].std()) > 0.05
    assert pixels_of(path, "tab:red") > 100  # the vertical line at k and its marker
    assert pixels_of(path, "tab:blue") > 300  # the held-out curve


def test_plot_of_a_non_hybrid_advice_marks_no_recommended_head(tmp_path):
    keys = np.random.default_rng(1).integers(0, 10**6, size=10**5)
    figures, advice = advised(keys)
    assert advice.mode == "dynamic"
    path = plot_coverage(figures, advice, tmp_path / "coverage.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert pixels_of(path, "tab:red") == 0


def test_unwritable_plot_path_is_a_clear_error(tmp_path, zipf_keys):
    figures, advice = advised(zipf_keys[:1000])
    with pytest.raises(AdvisorError, match="cannot write plot"):
        plot_coverage(figures, advice, tmp_path / "no" / "such" / "dir" / "plot.png")
