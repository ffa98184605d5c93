"""Pairings as matching announces them, their history, and their end date."""
