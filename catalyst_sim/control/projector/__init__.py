"""The read side: one durable consumer per Environment folding JetStream events into KV (R-PROJ-01..06)."""

from catalyst_sim.control.projector.fold import Event, Folder, ParkedEvent, decode
from catalyst_sim.control.projector.projector import KVChange, Projector, durable_name

__all__ = ["Event", "Folder", "KVChange", "ParkedEvent", "Projector", "decode", "durable_name"]
