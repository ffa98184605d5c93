"""The command line every service has: ``python -m crossgen_<name> serve|migrate|dead-letters``.

A service adds commands of its own (``Command``); each returns the process exit code.
"""

import argparse
import asyncio
import gc
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI
from prometheus_client import Gauge

from crossgen_shared import before_serving, db, dead_letters, migrations, observability, unreachable
from crossgen_shared.settings import ServiceSettings

YOUNG_COLLECTION_EVERY = 10_000  # new objects between two looks at the youngest generation (700)
FROZEN_FROM = 100_000  # objects a full collection keeps, from which they are frozen too
FULL_COLLECTION_EVERY = 1  # middle collections before a full one may come (10)
FROZEN = Gauge(
    "crossgen_gc_frozen_objects",
    "Objects the garbage collector no longer walks: start-up's, and what big full collections kept",
)
FROZEN.set_function(gc.get_freeze_count)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, ServiceSettings], int]


def main(
    name: str,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    migrations_dir: Path,
    argv: list[str] | None = None,
    commands: Sequence[Command] = (),
) -> None:
    parser = argparse.ArgumentParser(prog=f"crossgen-{name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service")
    sub.add_parser("migrate", help="upgrade the database to the latest schema")
    _dead_letter_arguments(sub.add_parser("dead-letters", help="list or replay dead letters"))
    for command in commands:
        command.arguments(sub.add_parser(command.name, help=command.help))
    args = parser.parse_args(argv)
    observability.configure(name, settings_factory())
    settings = settings_factory()
    if args.command == "migrate":
        try:
            migrations.upgrade(migrations_dir, settings.database_url)
        except Exception as failed:
            if not db.unavailable(failed):
                raise
            sys.exit(unreachable.database_unusable(settings, failed))
    elif args.command == "dead-letters":
        try:
            asyncio.run(_dead_letters(name, args, settings))
        except KafkaConnectionError:
            sys.exit(unreachable.kafka_not_answering(settings))
    elif args.command == "serve":
        try:
            asyncio.run(before_serving.until_ready(settings, migrations_dir))
        except KeyboardInterrupt:
            sys.exit(130)  # stopped while waiting: nothing was started
        app = app_factory(settings)
        settle_collector()
        uvicorn.run(
            app,
            host=settings.http_host,
            port=settings.http_port,
            timeout_graceful_shutdown=int(settings.shutdown_timeout),
            loop="auto",  # uvloop, one of our dependencies, where it is installed
            log_config=None,
        )
    else:
        chosen = next(c for c in commands if c.name == args.command)
        sys.exit(chosen.run(args, settings))


def settle_collector() -> None:
    """The garbage collector set for serving, once start-up is done."""
    # What start-up made (modules, mappers, models) lives as long as the process. Kept out of
    # the collector's sight, a full collection stops the event loop for some ms, not 100.
    gc.collect()
    gc.freeze()
    # What a service keeps while serving grows: a program's live matching, about 2 KB a
    # participant. With the young generation looked at every 700 new objects, much of each
    # batch's reached the oldest before it died, and full collections came every 5-10 s, walking
    # all that was kept: 0.3-0.9 s at 30,000 participants. Every 10,000, a batch's objects die
    # young, and few reach the oldest generation.
    # A full collection may come after every middle one, not every tenth: a tenth came after a
    # million new objects, the first at 88,000 participants, walking 730,000 objects in 0.6 s.
    # Python still waits until a quarter more than the last one kept has moved to the oldest
    # generation; and once a full collection keeps FROZEN_FROM, they are frozen (below). So each
    # walks about FROZEN_FROM objects at most, however large the programs grow.
    gc.set_threshold(YOUNG_COLLECTION_EVERY, gc.get_threshold()[1], FULL_COLLECTION_EVERY)
    if freeze_what_lives_on not in gc.callbacks:
        gc.callbacks.append(freeze_what_lives_on)


def freeze_what_lives_on(phase: str, info: Mapping[str, int]) -> None:
    """After a full collection that kept ``FROZEN_FROM`` objects or more, freeze them as well.

    What a full collection keeps is mostly a program's live matching, about 6 objects a
    participant, which lives as long as its program does. Walked again by every full collection,
    it held the event loop for 2 s at 176,000 participants; a full collection now walks only
    what came since the last one that froze. A frozen object is still freed when its last
    reference goes; only a reference cycle among frozen objects would stay, and the live matching
    has none (a test says so)."""
    if phase == "stop" and info["generation"] == 2 and len(gc.get_objects(2)) >= FROZEN_FROM:
        gc.freeze()


def _dead_letter_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="print every dead letter: reason, origin, key, value")
    replay = actions.add_parser(
        "replay", help="re-publish dead letters not replayed yet to their origin topic"
    )
    replay.add_argument("--origin-topic", help="only the letters that came from this topic")
    replay.add_argument("--limit", type=int, help="at most this many letters")


async def _dead_letters(service: str, args: argparse.Namespace, settings: ServiceSettings) -> None:
    if args.action == "list":
        letters = await dead_letters.read(settings, service)
        summary = f"{len(letters)} dead letter(s) parked"
    else:
        letters = await dead_letters.replay(
            settings, service, origin_topic=args.origin_topic, limit=args.limit
        )
        cut = sum(1 for letter in letters if letter.cut)
        summary = f"{len(letters) - cut} dead letter(s) replayed"
        if cut:
            summary += f"; {cut} passed over, cut when parked (above)"
    for letter in letters:
        print(letter.describe())
    print(summary)
