"""Stage 3: the networks, the Sound-of-Pixels model and its checkpoints."""
