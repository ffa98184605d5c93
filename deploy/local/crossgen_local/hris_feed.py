"""A company's HRIS feed, simulated: SCIM User records on the HRIS topic, as an integration sends
them, for the pipeline benchmark and the fault suite.

Every record carries a sequence number for its employee, in the display name ("E-000042 #3") and
the SCIM version, so that whoever reads what the services stored or sent can tell which record it
came from: what was lost, what arrived twice, what overtook what.
"""

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Self

import httpx
from aiokafka import AIOKafkaProducer

from crossgen_shared import topics

Role = Literal["learner", "mentor"]

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CROSSGEN = "urn:ietf:params:scim:schemas:extension:crossgen:2.0:User"

# A program that enrols whoever the feed brings: seniors learn, juniors teach.
ELIGIBILITY: dict[str, Any] = {
    "enrolment": "automatic",
    "learner": {"job_level_min": 6},
    "mentor": {"job_level_max": 3},
}


async def create_program(matching: httpx.AsyncClient, admin: dict[str, str], name: str) -> str:
    """Create, through matching's API, a program that enrols whoever the feed brings; its id."""
    created = await matching.post("/programs", json={"name": name}, headers=admin)
    program_id: str = created.raise_for_status().json()["id"]
    path = f"/programs/{program_id}/eligibility"
    (await matching.put(path, json=ELIGIBILITY, headers=admin)).raise_for_status()
    return program_id


_LEVEL: dict[Role, str] = {"learner": "L8", "mentor": "L2"}
_TENURE_YEARS: dict[Role, int] = {"learner": 20, "mentor": 1}
# What mentors know and learners want to learn: every learner fits every mentor, so each joining
# learner finds a free mentor and the pipeline's pace is Crossgen's, not the workforce's.
SKILLS = ("generative ai", "tiktok", "hybrid work")


@dataclass(frozen=True)
class Employee:
    number: str
    role: Role
    department: str

    @property
    def email(self) -> str:
        return f"{self.number.lower()}@example.com"


@dataclass(frozen=True)
class Accepted:
    """A record the broker acknowledged: from here on, Crossgen must not lose it."""

    employee_number: str
    seq: int
    sent_at: float  # time.time() when it was handed to the producer
    partition: int
    offset: int
    # When it was due (epoch s): at ``offer``'s rate, or when sent. A feed held up (its process
    # waiting for a core) sends late; its records' latency still counts from when they were due.
    due_at: float
    # When the broker's ack came (time.time()). Slow acks hold the feed up too: while a produce
    # request is out, the next records wait, and once a partition's batch is full, so does send.
    acked_at: float


def workforce(size: int, departments: int = 10) -> list[Employee]:
    """Mentors and learners alternately, spread over departments: each learner can be matched."""
    return [
        Employee(f"E-{i:06d}", "mentor" if i % 2 == 0 else "learner", f"Dept {i % departments}")
        for i in range(size)
    ]


def display_name(employee: Employee, seq: int) -> str:
    return f"{employee.number} #{seq}"


def seq_of(name: str) -> int:
    """The sequence number a display name was written by; 0 when none."""
    _, _, number = name.rpartition("#")
    return int(number) if number.isdigit() else 0


def scim_user(employee: Employee, seq: int, modified: datetime) -> dict[str, Any]:
    hired = date.today() - timedelta(days=365 * _TENURE_YEARS[employee.role])
    return {
        "schemas": [CORE, ENTERPRISE, CROSSGEN],
        "id": employee.number,
        "userName": employee.email,
        "displayName": display_name(employee, seq),
        "active": True,
        "emails": [{"value": employee.email, "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": employee.number, "department": employee.department},
        CROSSGEN: {
            "jobLevel": _LEVEL[employee.role],
            "hireDate": hired.isoformat(),
            ("skills" if employee.role == "mentor" else "interests"): list(SKILLS),
        },
        "meta": {
            "resourceType": "User",
            "lastModified": modified.isoformat(),
            "version": f'W/"{seq}"',
        },
    }


@dataclass
class HrisFeed:
    """``async with HrisFeed(bootstrap_servers) as feed: await feed.send(employee, 1)``."""

    bootstrap_servers: str
    accepted: list[Accepted] = field(default_factory=list)
    # Records of one employee must be dated in the order they are sent, also within a millisecond.
    _last_modified: dict[str, datetime] = field(default_factory=dict)
    _producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Self:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, employee: Employee, seq: int) -> Accepted:
        """Send one record and wait for the broker's acknowledgement."""
        return await (await self._enqueue(employee, seq))

    async def offer(self, records: Iterable[tuple[Employee, int]], rate: float) -> None:
        """Send records at a fixed rate (records a second), not waiting for one ack to send the
        next, as a busy HRIS would: the offered load does not slow down when Crossgen does, and
        records sent late are due when the rate had them due (``Accepted.due_at``).
        """
        loop = asyncio.get_running_loop()
        start, epoch = loop.time(), time.time()
        pending: list[asyncio.Future[Accepted]] = []
        for i, (employee, seq) in enumerate(records):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(await self._enqueue(employee, seq, epoch + i / rate))
        await asyncio.gather(*pending)

    async def _enqueue(
        self, employee: Employee, seq: int, due_at: float | None = None
    ) -> "asyncio.Future[Accepted]":
        """Hand a record to the producer, in order: one employee's records share a key, so a
        partition, and are enqueued one after the other. The future resolves on the ack."""
        assert self._producer is not None, "use HrisFeed as an async context manager"
        now = datetime.now(UTC)
        previous = self._last_modified.get(employee.number)
        modified = max(now, previous + timedelta(microseconds=1)) if previous else now
        self._last_modified[employee.number] = modified
        sent_at = time.time()
        due = sent_at if due_at is None else due_at
        delivery = await self._producer.send(
            topics.HRIS,
            json.dumps(scim_user(employee, seq, modified)).encode(),
            key=employee.number.encode(),
            headers=[
                ("hris-format", b"scim"),
                ("hris-event-id", f"{employee.number}:{seq}".encode()),
            ],
        )

        async def acknowledged() -> Accepted:
            metadata = await delivery
            accepted = Accepted(
                employee.number, seq, sent_at, metadata.partition, metadata.offset, due, time.time()
            )
            self.accepted.append(accepted)
            return accepted

        return asyncio.ensure_future(acknowledged())
