"""zs_core: the pure library behind zs-sweep (no Ray, no CLI, no prints, no global state)."""
