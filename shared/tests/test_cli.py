"""``serve`` puts what start-up made out of the garbage collector's sight before it serves: a
full collection then walks only what the service made since, so it pauses the loop briefly; and
the collector looks at young objects less often, so that few of them live on to need one; what a
full collection keeps, once it is much, is put out of sight too. A
one-shot command whose broker or database does not answer stops with one line that says what to
check, not a traceback."""

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from crossgen_shared import cli
from crossgen_shared.settings import ServiceSettings

from .messaging import DemoSettings, a_closed_port, offline_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    while cli.freeze_what_lives_on in gc.callbacks:
        gc.callbacks.remove(cli.freeze_what_lives_on)
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def ready(*_: object) -> None:
    """No broker nor database here: they count as ready at once."""


def test_serve_freezes_what_start_up_made_before_serving(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.observability, "configure", lambda *_: None)
    monkeypatch.setattr(cli.before_serving, "until_ready", ready)
    made: list[object] = []
    served: list[tuple[FastAPI, int]] = []
    thresholds: list[tuple[int, int, int]] = []

    def app_factory(_: ServiceSettings) -> FastAPI:
        app = FastAPI()
        made.append(app)
        return app

    def run(app: FastAPI, **_: Any) -> None:
        served.append((app, gc.get_freeze_count()))
        thresholds.append(gc.get_threshold())

    monkeypatch.setattr(cli.uvicorn, "run", run)
    settings = offline_settings()
    cli.main("matching", lambda: settings, app_factory, Path("."), argv=["serve"])

    [(app, frozen)] = served
    assert app is made[0]
    # Everything imported and made before serving is in the permanent generation.
    assert frozen > 10_000
    # What it makes while serving dies young before the collector looks; a full pass may follow
    # any middle one, and walks only what came since the last one froze.
    assert thresholds == [(cli.YOUNG_COLLECTION_EVERY, 10, cli.FULL_COLLECTION_EVERY)]


def test_what_a_full_collection_keeps_is_frozen_once_it_is_much(unfrozen: None) -> None:
    cli.settle_collector()
    cli.settle_collector()  # as a benchmark may: the callback is there once
    assert gc.callbacks.count(cli.freeze_what_lives_on) == 1
    frozen = gc.get_freeze_count()

    few = [[index] for index in range(1000)]
    gc.collect()
    assert gc.get_freeze_count() == frozen  # a small heap is walked, as before

    kept = [[index] for index in range(cli.FROZEN_FROM)]
    gc.collect()
    # What the full collection kept is out of the next one's way, the few from before too.
    assert gc.get_freeze_count() >= frozen + len(kept) + len(few)
    assert len(gc.get_objects(2)) < 1000
    # An operator sees it: growing with a program's participants, not without them.
    assert REGISTRY.get_sample_value("crossgen_gc_frozen_objects") == gc.get_freeze_count()


@pytest.mark.parametrize(
    ("command", "setting", "says"),
    [
        (
            ["dead-letters", "list"],
            {"kafka_bootstrap_servers": "127.0.0.1:{port}"},
            "Kafka at 127.0.0.1:{port} does not answer. Is the broker up? "
            "DEMO_KAFKA_BOOTSTRAP_SERVERS says where it is.",
        ),
        (
            ["migrate"],
            {"database_url": "postgresql+asyncpg://crossgen:secret@127.0.0.1:{port}/demo"},
            "PostgreSQL at postgresql+asyncpg://crossgen:***@127.0.0.1:{port}/demo cannot be "
            "used: [Errno 111] Connect call failed ('127.0.0.1', {port}). DEMO_DATABASE_URL says "
            "where it is and as whom.",
        ),
    ],
    ids=["dead-letters, no broker", "migrate, no database"],
)
def test_a_command_stops_with_what_to_check_when_what_it_needs_does_not_answer(
    command: list[str],
    setting: dict[str, str],
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(cli.observability, "configure", lambda *_: None)
    port = a_closed_port()
    settings = offline_settings(
        DemoSettings, **{name: value.format(port=port) for name, value in setting.items()}
    )
    migrations = tmp_path / "migrations"  # a service's, with no revision yet
    (migrations / "versions").mkdir(parents=True)
    env = "from crossgen_shared.migrations import run_env\nrun_env()\n"
    (migrations / "env.py").write_text(env)

    with pytest.raises(SystemExit) as stopped:
        cli.main("demo", lambda: settings, lambda _: FastAPI(), migrations, command)

    assert stopped.value.code == says.format(port=port)
