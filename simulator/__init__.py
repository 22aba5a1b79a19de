"""relcomm: semantic communication between agents that share anchors, not weights."""

__version__ = "0.1.0"
