"""``python -m crossgen_matching import-employees FILE.csv``: a first load, or the only feed.

One employee a row, under a header row naming the columns (any case; spaces and dashes read as
underscores):

    employee_number (required), external_id, user_name, display_name, email, active (true/false),
    department, division, organization, cost_center, manager_employee_number, title, job_level,
    hire_date (YYYY-MM-DD), location, timezone (IANA, e.g. Europe/Berlin),
    languages, skills (what they know and can teach), interests (what they want to learn),
    source_timestamp (ISO 8601; default: --as-of, else now)

languages, skills and interests hold several values separated by ";" ("Figma; TikTok").

A column the file does not have leaves what is stored; an empty cell clears it. Rows go through
the same directory write path as SCIM and the HRIS topic, so a termination in the file ends
pairings the same way. Events wait in the outbox for the running service to publish them.
Each 200 rows commit together. Stopped part-way (the database, a line the CSV reader cannot
read, Ctrl-C), it says up to which line the rows were imported; importing the file again is safe.
Exit code: 0, or 1 when rows were rejected or the database could not be used, or 2 when the file
cannot be read, or 130 after Ctrl-C.
"""

import argparse
import asyncio
import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress

from crossgen_matching.app import build
from crossgen_matching.directory import employees, lookup
from crossgen_matching.directory.freshness import Outcome
from crossgen_matching.directory.record import LIST_FIELDS, PERSON_FIELDS, EmployeeRecord
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import unreachable
from crossgen_shared.cli import Command
from crossgen_shared.db import unavailable
from crossgen_shared.errors import RequestError
from crossgen_shared.service import Service
from crossgen_shared.settings import ServiceSettings

COLUMNS = frozenset({"employee_number", "source_timestamp", *PERSON_FIELDS}) - {
    "manager_external_id"
}
BATCH = 200  # rows a transaction; each row has a savepoint of its own


@dataclass
class Summary:
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    rejected: list[tuple[int, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    committed_through: int = 0  # the last line of the last batch committed

    def add(self, batch: "Summary", last_line: int) -> None:
        for outcome, count in batch.counts.items():
            self.counts[outcome] += count
        self.rejected += batch.rejected
        self.committed_through = last_line

    def stopped(self) -> str:
        """What an import stopped part-way had done."""
        again = "Importing the file again is safe: rows already imported come out unchanged."
        if not self.committed_through:
            return f"No row was imported. {again}"
        return f"Rows up to line {self.committed_through} were imported: {self.render()}\n{again}"

    def render(self) -> str:
        counts = self.counts
        lines = [
            f"created {counts[Outcome.CREATED]}, updated {counts[Outcome.UPDATED]}, "
            f"unchanged {counts[Outcome.UNCHANGED]}, rejected {len(self.rejected)}"
        ]
        if older := counts[Outcome.STALE] + counts[Outcome.DUPLICATE]:
            lines.append(f"{older} row(s) older than the directory's record were left out")
        if self.ignored_columns:
            lines.append(f"ignored columns: {', '.join(self.ignored_columns)}")
        lines += [f"line {line}: {reason}" for line, reason in self.rejected]
        return "\n".join(lines)


class UnusableFile(Exception):
    pass


def column_name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def row_record(row: dict[str, str], as_of: datetime) -> EmployeeRecord:
    if not (row.get("employee_number") or "").strip():
        raise ValueError("employee_number is empty")
    values: dict[str, Any] = {k: v for k, v in row.items() if k in COLUMNS}
    for name in values.keys() & LIST_FIELDS:
        values[name] = tuple(s.strip() for s in (values[name] or "").split(";") if s.strip())
    values["source_timestamp"] = values.get("source_timestamp") or as_of
    return EmployeeRecord.model_validate(values | {"source": "csv"})


async def import_file(
    service: Service, path: Path, as_of: datetime, console: Console, summary: Summary
) -> None:
    try:
        opened = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UnusableFile(str(exc)) from exc
    with opened as file:
        total = max(sum(1 for _ in file) - 1, 0)
        file.seek(0)
        reader = csv.DictReader(file)
        headers = [column_name(h) for h in reader.fieldnames or ()]
        if "employee_number" not in headers:
            raise UnusableFile(f"{path}: no employee_number column in the header row")
        reader.fieldnames = headers
        summary.ignored_columns = [h for h in headers if h not in COLUMNS]
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("importing employees", total=total)

            async def commit(batch: list[tuple[int, dict[str, str]]]) -> None:
                summary.add(await _import_batch(service, batch, as_of), batch[-1][0])
                progress.advance(task, len(batch))

            batch: list[tuple[int, dict[str, str]]] = []
            for numbered in _numbered(reader):
                batch.append(numbered)
                if len(batch) == BATCH:
                    await commit(batch)
                    batch = []
            if batch:
                await commit(batch)


def _numbered(reader: "csv.DictReader[str]") -> Iterator[tuple[int, dict[str, str]]]:
    """Each row with its line; a line the reader cannot read stops the import."""
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:  # the DictReader's own line_num is the last row it gave
        raise UnusableFile(f"line {reader.reader.line_num}: {exc}") from exc


async def _import_batch(
    service: Service, rows: list[tuple[int, dict[str, str]]], as_of: datetime
) -> Summary:
    """The batch's outcomes, once committed."""
    summary = Summary()
    records: list[tuple[int, EmployeeRecord]] = []
    for line, row in rows:
        try:
            records.append((line, row_record(row, as_of)))
        except ValueError as exc:
            summary.rejected.append((line, _describe(exc)))
    async with service.unit_of_work() as uow:
        # Locked first, in order, not row by row in the file's: a batch of automatic enrolment
        # locks the people it looks at so, and the two would wait for each other in a circle.
        numbers = sorted({r.employee_number for _, r in records if r.employee_number})
        await uow.session.execute(lookup.LOCKED_IN_ORDER, {"numbers": numbers})
        for line, incoming in records:
            try:
                async with uow.session.begin_nested():
                    change = await employees.record(uow, incoming)
            except RequestError as exc:
                summary.rejected.append((line, str(exc)))
                continue
            summary.counts[change.outcome] += 1
        await uow.commit()
    summary.rejected.sort()  # those the reader refused came first
    return summary


def _describe(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", type=Path, help="CSV file, one employee a row (columns above)")
    parser.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        help="when the file's data was true (ISO 8601); rows older than the directory's are left",
    )


def _run(args: argparse.Namespace, settings: ServiceSettings) -> int:
    assert isinstance(settings, MatchingSettings)
    as_of: datetime = args.as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    service = build(settings)
    console = Console(stderr=True)
    summary = Summary()

    async def run() -> None:
        try:
            await import_file(service, args.file, as_of, console, summary)
        finally:
            await service.engine.dispose()

    try:
        asyncio.run(run())
    except (UnusableFile, UnicodeDecodeError, csv.Error) as exc:  # csv.Error: in the header
        print(f"cannot import: {exc}", file=sys.stderr)
        if summary.committed_through:
            print(summary.stopped(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stopped. {summary.stopped()}", file=sys.stderr)
        return 130
    except Exception as exc:
        if not unavailable(exc):
            raise
        unusable = unreachable.database_unusable(settings, exc)
        print(f"{unusable} {summary.stopped()}", file=sys.stderr)
        return 1
    print(summary.render())
    return 1 if summary.rejected else 0


IMPORT_EMPLOYEES = Command(
    name="import-employees",
    help="load employees from a CSV file into the directory",
    arguments=_arguments,
    run=_run,
)
