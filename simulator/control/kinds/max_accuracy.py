"""``controller.kind: max-accuracy``: the baseline of highest Ĝ at full speed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from simulator.control.baselines import MaxAccuracyPolicy
from simulator.control.policy import OptionSetConfig, PolicyController
from simulator.control.registry import register

if TYPE_CHECKING:
    from simulator.config import Scenario


class MaxAccuracyControllerConfig(OptionSetConfig):
    """Baseline: the option of highest Ĝ at full power, f_max and an equal server split."""

    kind: Literal["max-accuracy"]


@register(MaxAccuracyControllerConfig)
class MaxAccuracyController(PolicyController):
    """:class:`~simulator.control.baselines.MaxAccuracyPolicy` in the world."""

    def make_policy(self, scenario: Scenario) -> Any:
        return MaxAccuracyPolicy(self.n, static=self.params)


__all__ = ["MaxAccuracyControllerConfig", "MaxAccuracyController"]
