"""The scale-up chain after the Cluster Autoscaler's launch decision, as seeded distributions.

Each stage of the chain is a median with a spread (lognormal through the median and the 90th
percentile) or a probe phase (uniform over one period). With ``spread`` off every stage takes its
median and every phase its mean, so hand calculations stay exact; with it on the draws come from the
simulation's own random stream, so a seed gives one result. The sources of every default are in
planner/settings.py and planner/README.md.

Order (what the pod waits for, in turn):
node launch -> node Ready -> GPUs allocatable (device plugin) -> image pulled on that node ->
server answers /health (weights + engine warm-up) -> startup probe's next tick -> readiness probe's
next tick -> ALB target healthy (first check + healthy threshold); only then does the ALB route to it
(the models namespace injects the ALB pod readiness gate, so Kubernetes calls the pod Ready then too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

# z of the 90th percentile of the standard normal: a lognormal through (median, p90) has
# sigma = ln(p90 / median) / Z90.
Z90 = 1.2815515655446004


@dataclass(frozen=True)
class Spread:
    """A positive delay: ``median`` seconds, ``p90`` its 90th percentile (p90 <= median: constant)."""

    median: float
    p90: float

    def __post_init__(self) -> None:
        if not (self.median >= 0 and self.p90 >= 0):
            raise ValueError(f"delay median {self.median} and p90 {self.p90} must be >= 0")

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / Z90 if self.median > 0 and self.p90 > self.median else 0.0

    def draw(self, rng: np.random.Generator | None) -> float:
        if rng is None or self.sigma == 0.0:
            return self.median
        return self.median * math.exp(self.sigma * float(rng.standard_normal()))


def fixed(seconds: float) -> Spread:
    return Spread(seconds, seconds)


@dataclass(frozen=True)
class StartupChain:
    """Delays of one scale-up; see the module docstring for the order."""

    node_ready: Spread  # EC2 launch -> Kubernetes node Ready
    device_plugin: Spread = Spread(0.0, 0.0)  # node Ready -> nvidia.com/gpu allocatable
    image_pull: Spread = Spread(0.0, 0.0)  # download + unpack, once per node
    model_load: Spread = Spread(0.0, 0.0)  # container start -> /health answers (weights + warm-up)
    startup_probe_period_seconds: float = 0.0
    readiness_probe_period_seconds: float = 0.0
    alb_interval_seconds: float = 0.0
    alb_healthy_threshold: int = 1
    spread: bool = False  # False: medians and mean phases (deterministic)

    def rng_or_none(self, rng: np.random.Generator) -> np.random.Generator | None:
        return rng if self.spread else None

    def node_seconds(self, rng: np.random.Generator) -> float:
        """Launch to a node the scheduler can put a GPU pod on."""
        draws = self.rng_or_none(rng)
        return self.node_ready.draw(draws) + self.device_plugin.draw(draws)

    def pull_seconds(self, rng: np.random.Generator) -> float:
        return self.image_pull.draw(self.rng_or_none(rng))

    def serving_seconds(self, rng: np.random.Generator) -> float:
        """Container start to the ALB routing to it: load, then the probes' and the ALB's checks.

        The startup probe ticks every period from container start (kubelet's prober worker), so it
        succeeds at the first tick at or after the server answers: exact, no draw. The readiness
        worker ticks on its own timer, so its next tick is a uniform phase (mean half a period). The
        ALB checks a newly registered target at its own phase and needs ``healthy_threshold``
        consecutive successes.
        """
        draws = self.rng_or_none(rng)
        loaded = self.model_load.draw(draws)
        period = self.startup_probe_period_seconds
        started = math.ceil(loaded / period - 1e-9) * period if period > 0 else loaded
        readiness = self._phase(self.readiness_probe_period_seconds, draws)
        alb = 0.0
        if self.alb_interval_seconds > 0:
            alb = (
                self._phase(self.alb_interval_seconds, draws)
                + (self.alb_healthy_threshold - 1) * self.alb_interval_seconds
            )
        return started + readiness + alb

    @staticmethod
    def _phase(period: float, rng: np.random.Generator | None) -> float:
        if period <= 0:
            return 0.0
        return period / 2 if rng is None else period * float(rng.random())

    @property
    def expected_cold_start_seconds(self) -> float:
        """Launch to routable at the medians and mean phases (the oracle starts capacity this early)."""
        deterministic = replace(self, spread=False)
        rng = np.random.default_rng(0)  # unused: deterministic
        return (
            deterministic.node_seconds(rng)
            + deterministic.pull_seconds(rng)
            + deterministic.serving_seconds(rng)
        )
