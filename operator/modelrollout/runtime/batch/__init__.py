"""The batch runner: chunked input -> model -> prediction store, verified and atomically published.

Entry point: ``modelrollout-batch`` (:mod:`.cli`).
"""
