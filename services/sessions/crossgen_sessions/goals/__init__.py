"""Learning goals a pair sets itself, with their progress."""
