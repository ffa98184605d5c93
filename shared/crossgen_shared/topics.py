"""Kafka topic names. Each topic carries one kind of thing, keyed by that thing's id.

A breaking change to a topic's events gets a new topic version published side by side.
"""

from typing import Final

PARTICIPANTS: Final = "crossgen.participants.v1"
PAIRINGS: Final = "crossgen.pairings.v1"
SESSIONS: Final = "crossgen.sessions.v1"
NOTIFICATIONS: Final = "crossgen.notifications.v1"
HRIS: Final = "crossgen.hris.v1"

ALL: Final = (PARTICIPANTS, PAIRINGS, SESSIONS, NOTIFICATIONS, HRIS)


DEAD_LETTER_SUFFIX: Final = ".deadletter.v1"


def consumer_group(service: str) -> str:
    """The consumer group of all of a service's consumers, in every replica."""
    return f"crossgen-{service}"


def dead_letter(service: str) -> str:
    """Each service's consumers dead-letter into a topic of their own."""
    return f"crossgen.{service}{DEAD_LETTER_SUFFIX}"


def is_dead_letter(topic: str) -> bool:
    return topic.endswith(DEAD_LETTER_SUFFIX)
