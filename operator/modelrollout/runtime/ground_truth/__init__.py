"""Ground truth: the shared prediction log, labels, and the figures the canary and the bake judge.

Every prediction a serving pod makes (``/predict`` rows, ``/lookup`` answers, hybrid misses the
model answered) is logged with the request id the server assigned, off the request path, into a
store every pod and Job reaches (:mod:`.settings` says which). Labels arrive later through
``/feedback`` on any pod (bearer token: :mod:`.feedback`) or in bulk (``modelrollout-batch labels
import``); each pod recomputes the figures of its own model version from the shared store and
exports them as gauges (:mod:`.exporter`), which the operator's ground-truth checks query with
``max()`` by ``model_version``.

Submodules (this package imports nothing, so ``prometheus_client`` stays unloaded until BentoML
set up its multiprocess directory):

- ``records``: what one logged prediction is; origin, keys and predictions as text
- ``settings``: which store the log uses (``MODELROLLOUT_GROUND_TRUTH_DSN``, ...)
- ``writer``: the bounded queue and the writer thread (batches, drops counted, retention)
- ``figures``: the figures of one version from (prediction, label, count) pairs (pure)
- ``exporter``: the thread that recomputes them and the gauges that export them
- ``feedback``: ``/feedback``'s bearer-token check and the label join
- ``metrics``: the counters and gauges, by name
"""
