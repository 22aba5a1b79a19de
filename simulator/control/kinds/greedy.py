"""``controller.kind: greedy``: the baseline of the cheapest option meeting the targets in each slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from simulator.control.baselines import GreedyPolicy
from simulator.control.policy import OptionSetConfig, PolicyController
from simulator.control.registry import register

if TYPE_CHECKING:
    from simulator.config import Scenario


class GreedyControllerConfig(OptionSetConfig):
    """Baseline: per task, the cheapest option meeting L_max with Ĝ ≥ A_min (simulation targets)."""

    requires_targets: ClassVar[bool] = True

    kind: Literal["greedy"]


@register(GreedyControllerConfig)
class GreedyController(PolicyController):
    """:class:`~simulator.control.baselines.GreedyPolicy` in the world, against L_max and A_min (+ margin)."""

    def make_policy(self, scenario: Scenario) -> Any:
        return GreedyPolicy(self.n, delay_max_s=self.delay_max_s, accuracy_min=self.accuracy_min, static=self.params)


__all__ = ["GreedyControllerConfig", "GreedyController"]
