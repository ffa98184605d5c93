"""``serve`` puts what start-up made out of the garbage collector's sight before it serves: a
full collection then walks only what the service made since, so it pauses the loop briefly; and
the collector looks at young objects less often, so that few of them live on to need one."""

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from crossgen_shared import cli
from crossgen_shared.settings import ServiceSettings

from .messaging import offline_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def answered(_: ServiceSettings) -> None:
    """No broker here: it counts as answering at once."""


def test_serve_freezes_what_start_up_made_before_serving(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.observability, "configure", lambda *_: None)
    monkeypatch.setattr(cli.kafka_wait, "until_kafka_answers", answered)
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
    # And what it makes while serving dies young before the collector looks: few full passes.
    assert thresholds == [(cli.YOUNG_COLLECTION_EVERY, 10, 10)]
