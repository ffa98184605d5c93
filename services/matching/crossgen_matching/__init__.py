"""Crossgen matching: owns the people, programs, enrolment and pairings."""
