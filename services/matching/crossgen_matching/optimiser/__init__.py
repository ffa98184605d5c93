"""Whole-program matching: scores, hard rules, candidate lists, min-cost flow, local repair.

Pure domain code, no I/O. The service builds a ``Program`` from its tables and calls
``match_program`` for a full run or a dry-run preview (the same call, nothing is written), and
keeps a ``LiveMatching`` per program between full runs for people who join or leave.
"""

from .incremental import LiveMatching, Repair
from .model import (
    Cause,
    Learner,
    MatchResult,
    Mentor,
    Pair,
    Pairing,
    Person,
    PinError,
    Program,
    Rule,
    ScoreStats,
    Unmatched,
    Weights,
)
from .program import Tuning, match_program, prepare
from .solve import Network, min_cost_flows

__all__ = [
    "Cause",
    "Learner",
    "LiveMatching",
    "MatchResult",
    "Mentor",
    "Network",
    "Pair",
    "Pairing",
    "Person",
    "PinError",
    "Program",
    "Repair",
    "Rule",
    "ScoreStats",
    "Tuning",
    "Unmatched",
    "Weights",
    "match_program",
    "min_cost_flows",
    "prepare",
]
