"""Crossgen notifications: owns every message to a person, its templates and its delivery log."""
