"""Per-slot optimizer: closed forms for rate and CPU frequencies, drift-plus-penalty controller."""

from simulator.control.closed_form import (
    optimal_cpu_frequency,
    optimal_rate,
    optimal_server_frequencies,
    server_frequency_at_price,
)
from simulator.control.lyapunov import LyapunovController, SlotDecision, VirtualQueues, solve_slot

__all__ = [
    "LyapunovController",
    "SlotDecision",
    "VirtualQueues",
    "optimal_cpu_frequency",
    "optimal_rate",
    "optimal_server_frequencies",
    "server_frequency_at_price",
    "solve_slot",
]
