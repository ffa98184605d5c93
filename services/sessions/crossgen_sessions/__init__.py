"""Crossgen sessions: owns what happens inside a pairing: sessions, feedback, goals, outcomes."""
