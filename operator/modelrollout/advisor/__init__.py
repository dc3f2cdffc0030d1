"""Serving-mode advisor: static (precompute + lookup), dynamic (online model) or hybrid.

The advisor measures a workload (cardinality, peakedness, request rate) from a request log
(`workload`, `peakedness`, `figures`) or from live Prometheus metrics (`live`), combines it with
facts about the model (`model_facts`) and cost parameters (`costs`), estimates storage, compute,
latency and freshness for each mode (`costs`, `latency`) and recommends one, with the head size
for hybrid (`recommend`). `report` and `plot` show the figures behind the choice.

Everything here is pure or reads only the files/URLs it is given; nothing imports kopf or
kubernetes, so the operator can call it from a thread and tests run without a cluster.
"""

from modelrollout.advisor.errors import AdvisorError

__all__ = ["AdvisorError"]
