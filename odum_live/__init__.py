"""odum-live: a live order execution service (OMS/EMS)."""
