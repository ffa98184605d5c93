"""Pairings at risk: found by a scheduled check, announced once, listed for the program owner."""
