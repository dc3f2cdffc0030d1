"""The weight steps a rollout walks through, from `spec.rollout`."""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout.api.base import parse_duration
from modelrollout.api.rollout import Rollout

DEFAULT_WEIGHTS = (10, 50)


@dataclass(frozen=True)
class Step:
    weight: int
    pause_seconds: float


def effective_steps(rollout: Rollout) -> list[Step]:
    """Explicit steps; or stepWeight increments up to maxWeight; or 10% then 50%.

    A step without a pause holds for one analysis interval (or not at all without analysis),
    so every weight is analysed at least once before the next."""
    default_pause = parse_duration(rollout.analysis.interval) if rollout.analysis else 0.0
    if rollout.steps:
        return [
            Step(s.set_weight, parse_duration(s.pause) if s.pause else default_pause) for s in rollout.steps
        ]
    if rollout.step_weight:
        weights = list(range(rollout.step_weight, rollout.max_weight + 1, rollout.step_weight))
        if weights[-1] != rollout.max_weight:
            weights.append(rollout.max_weight)
        return [Step(w, default_pause) for w in weights]
    return [
        Step(min(w, rollout.max_weight), default_pause) for w in DEFAULT_WEIGHTS if w <= rollout.max_weight
    ] or [Step(rollout.max_weight, default_pause)]
