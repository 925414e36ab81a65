"""Mix-and-separate training: the trainer and what a run writes."""
