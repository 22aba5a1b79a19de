"""Network layer: the SimPy world in which devices send relative representations to edge servers.

One concept per module: :mod:`.agents` (tasks, transmitters, receivers), :mod:`.cpu` (a server
CPU shared FIFO, by processor sharing or in partitions), :mod:`.links` (per-slot channel state),
:mod:`.traffic` (arrival processes), :mod:`.faults` (fault intervals), :mod:`.energy` (compute
and energy model), :mod:`.semantic` (batched task outcomes), :mod:`.controller` (the slot-level
controller interface and the static controller), :mod:`.metrics` (bounded-memory metrics) and
:mod:`.world` (the event loop that wires them together).
"""
