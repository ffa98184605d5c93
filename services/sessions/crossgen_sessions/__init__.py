"""Crossgen sessions: owns what happens inside a pairing: sessions and feedback."""
