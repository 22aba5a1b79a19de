"""The control layer: the controller interface, option tables, the kinds and their registry, the per-slot optimizers.

The world sees only :mod:`.interface` (what a controller observes, decides and is told) and
:func:`.registry.build_controller`; each ``controller.kind`` is one module of :mod:`.kinds`.
The numerical kernels: closed forms for rate and CPU frequencies (:mod:`.closed_form`), the
drift-plus-penalty slot problem and its queues (:mod:`.lyapunov`), the baseline policies
(:mod:`.baselines`) and the offline lower bound (:mod:`.oracle`).
"""

from simulator.control import kinds  # noqa: F401  (registers every kind)
from simulator.control.closed_form import (
    optimal_cpu_frequency,
    optimal_rate,
    optimal_server_frequencies,
    server_frequency_at_price,
)
from simulator.control.interface import Controller, Decision, Feedback, NetworkSpec, Observation
from simulator.control.lyapunov import LyapunovController, SlotDecision, VirtualQueues, solve_slot
from simulator.control.registry import anchor_options, build_controller

__all__ = [
    "Controller",
    "Decision",
    "Feedback",
    "LyapunovController",
    "NetworkSpec",
    "Observation",
    "SlotDecision",
    "VirtualQueues",
    "anchor_options",
    "build_controller",
    "optimal_cpu_frequency",
    "optimal_rate",
    "optimal_server_frequencies",
    "server_frequency_at_price",
    "solve_slot",
]
