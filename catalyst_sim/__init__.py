"""catalyst-sim: a simulation and conformance harness for Catalyst."""

__version__ = "0.1.0"
