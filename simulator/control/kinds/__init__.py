"""Controller kinds behind one interface (:mod:`..interface`), found by ``controller.kind`` (:mod:`..registry`).

Adding a kind is one module here (its settings model, subclassing
:class:`~simulator.control.interface.ControllerSettings` — or
:class:`~simulator.control.policy.OptionSetConfig` for a per-slot policy — and its factory
decorated with :func:`~simulator.control.registry.register`) plus its import below.
"""

# isort: off  (registration order is the order of the kinds in messages and in the schema: the default first)
from simulator.control.kinds import static, lyapunov, max_accuracy, min_energy, greedy  # noqa: F401
from simulator.control.kinds import offline_multipliers  # noqa: F401
# isort: on

from simulator.control.registry import KINDS, settings_union

ControllerConfig = settings_union()
"""The type of a scenario's ``controller:`` section (a union of the kinds on ``kind``)."""

__all__ = ["ControllerConfig", "KINDS"]
