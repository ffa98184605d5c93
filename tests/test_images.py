"""The images and the Docker Compose stack, checked without Docker.

Each Dockerfile parses, copies only what the repository has, keeps nothing but the built
virtualenv in a non-root final stage, and starts a command its service's CLI has. The compose
file builds from those Dockerfiles, runs real CLI commands, and sets only settings the services
read, so a renamed setting or command fails here rather than at someone's `docker compose up`.
"""

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from pydantic_settings import BaseSettings

from crossgen_matching.settings import MatchingSettings
from crossgen_notifications.settings import NotificationsSettings
from crossgen_sessions.settings import SessionsSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
SETTINGS: dict[str, type[BaseSettings]] = {
    "matching": MatchingSettings,
    "sessions": SessionsSettings,
    "notifications": NotificationsSettings,
}
SDK_VARIABLE = re.compile(r"OTEL_[A-Z_]+")  # read by the OpenTelemetry SDK, not by a settings class
NON_ROOT_UID = "10001"  # what the Helm charts' securityContext runs as


@functools.cache
def cli_commands(service: str) -> frozenset[str]:
    """The commands ``python -m crossgen_<service>`` accepts, from its own ``--help``."""
    usage = subprocess.run(
        [sys.executable, "-m", f"crossgen_{service}", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    choices = re.search(r"\{([\w,-]+)\}", usage)
    assert choices, usage
    return frozenset(choices.group(1).split(","))


def setting_names(service: str) -> set[str]:
    settings = SETTINGS[service]
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def dockerfile(service: str) -> DockerfileParser:
    return DockerfileParser(str(ROOT / "services" / service / "Dockerfile"), env_replace=False)


def final_stage(parsed: DockerfileParser) -> list[dict[str, Any]]:
    last_from = max(i for i, step in enumerate(parsed.structure) if step["instruction"] == "FROM")
    return parsed.structure[last_from:]


def steps(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [str(step["value"]) for step in stage if step["instruction"] == instruction]


def copy_arguments(value: str) -> tuple[list[str], list[str]]:
    """(flags, sources) of a COPY/ADD, in shell or JSON form; the destination is dropped."""
    words = json.loads(value) if value.lstrip().startswith("[") else value.split()
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1]


@pytest.mark.parametrize("service", SETTINGS)
def test_every_file_a_dockerfile_copies_from_the_build_context_exists(service: str) -> None:
    parsed = dockerfile(service)
    copied = [
        copy_arguments(value)
        for instruction in ("COPY", "ADD")
        for value in steps(parsed.structure, instruction)
    ]
    from_context = [source for flags, sources in copied if not flags for source in sources]
    assert from_context, "the image builds nothing from the repository"
    for source in from_context:
        assert (ROOT / source).exists(), f"services/{service}/Dockerfile copies missing {source}"


@pytest.mark.parametrize("service", SETTINGS)
def test_the_final_stage_is_only_the_built_virtualenv_run_as_non_root(service: str) -> None:
    parsed = dockerfile(service)
    final = final_stage(parsed)
    assert parsed.is_multistage
    for value in steps(final, "COPY"):
        assert any(flag.startswith("--from=") for flag in copy_arguments(value)[0]), value
    for command in steps(final, "RUN"):
        assert not re.search(r"pip install|apt-get|apk add", command), command
    *_, user = steps(final, "USER")
    assert user.split(":")[0] == NON_ROOT_UID


@pytest.mark.parametrize("service", SETTINGS)
def test_the_image_installs_the_versions_ci_passes_with_and_keeps_no_cache(service: str) -> None:
    parsed = dockerfile(service)
    installs = [c for c in steps(parsed.structure, "RUN") if "pip install" in c]
    assert installs
    for command in installs:
        assert "--no-cache-dir" in command, command
        assert "-c constraints.txt" in command, command
    copied = [copy_arguments(value)[1] for value in steps(parsed.structure, "COPY")]
    assert ["constraints.txt"] in copied


@pytest.mark.parametrize("service", SETTINGS)
def test_the_image_starts_a_command_of_its_service_cli(service: str) -> None:
    final = final_stage(dockerfile(service))
    [entrypoint] = steps(final, "ENTRYPOINT")
    [cmd] = steps(final, "CMD")
    assert json.loads(entrypoint) == ["python", "-m", f"crossgen_{service}"]
    assert json.loads(cmd)[0] in cli_commands(service)
    assert {"serve", "migrate"} <= cli_commands(service)  # what compose and the charts run


@pytest.mark.parametrize("service", SETTINGS)
def test_the_image_sets_only_settings_of_its_service_and_logs_json(service: str) -> None:
    envs = dockerfile(service).envs
    prefix = f"{service.upper()}_"
    assert {name for name in envs if name.startswith(prefix)} <= setting_names(service)
    assert envs[f"{prefix}LOG_FORMAT"] == "json"


def compose_service_of(name: str) -> str:
    """Which Crossgen service a compose service runs, from the Dockerfile it builds."""
    dockerfile_path = Path(COMPOSE["services"][name]["build"]["dockerfile"])
    assert dockerfile_path.parts[0] == "services" and dockerfile_path.name == "Dockerfile"
    return dockerfile_path.parts[1]


CROSSGEN = sorted(name for name, spec in COMPOSE["services"].items() if "build" in spec)


def test_compose_runs_each_service_once_to_migrate_and_once_to_serve() -> None:
    commands = sorted((compose_service_of(n), COMPOSE["services"][n]["command"]) for n in CROSSGEN)
    assert commands == sorted(
        (service, [command]) for service in SETTINGS for command in ("migrate", "serve")
    )


@pytest.mark.parametrize("name", CROSSGEN)
def test_compose_builds_from_the_service_dockerfile_and_runs_a_cli_command(name: str) -> None:
    spec = COMPOSE["services"][name]
    service = compose_service_of(name)
    build = COMPOSE_DIR / spec["build"]["context"]
    assert build.resolve() == ROOT
    assert (build / spec["build"]["dockerfile"]).is_file()
    assert spec["command"][0] in cli_commands(service)


@pytest.mark.parametrize("name", CROSSGEN)
def test_compose_sets_only_settings_the_service_reads(name: str) -> None:
    service = compose_service_of(name)
    unknown = {
        variable
        for variable in COMPOSE["services"][name]["environment"]
        if variable not in setting_names(service) and not SDK_VARIABLE.fullmatch(variable)
    }
    assert not unknown, f"{name} sets what {SETTINGS[service].__name__} does not read"


@pytest.mark.parametrize(
    "name", [n for n in CROSSGEN if COMPOSE["services"][n]["command"] == ["serve"]]
)
def test_a_server_starts_only_after_its_migrations_succeeded(name: str) -> None:
    spec = COMPOSE["services"][name]
    migrations = [
        dependency
        for dependency in spec["depends_on"]
        if COMPOSE["services"][dependency].get("command") == ["migrate"]
    ]
    assert len(migrations) == 1, spec["depends_on"]
    assert COMPOSE["services"][migrations[0]]["image"] == spec["image"]
    assert spec["depends_on"][migrations[0]]["condition"] == "service_completed_successfully"


def test_postgres_has_every_database_the_services_connect_to() -> None:
    init = (COMPOSE_DIR / "postgres-init.sql").read_text()
    mounted = COMPOSE["services"]["postgres"]["volumes"]
    assert any(
        volume.startswith("./postgres-init.sql:/docker-entrypoint-initdb.d/") for volume in mounted
    )
    for name in CROSSGEN:
        service = compose_service_of(name)
        url = COMPOSE["services"][name]["environment"][f"{service.upper()}_DATABASE_URL"]
        assert f"CREATE DATABASE {url.rsplit('/', 1)[1]};" in init


def test_every_variable_compose_reads_is_explained_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", (COMPOSE_DIR / "docker-compose.yml").read_text()))
    example = (COMPOSE_DIR / ".env.example").read_text()
    explained = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert used == explained
