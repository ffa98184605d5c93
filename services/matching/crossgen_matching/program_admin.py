"""What a program owner does: preview and publish a whole-program run, weigh the score, pin and
forbid pairs.

A run keeps accepted pairings as they are and treats open proposals as free to move, moving one
only where that raises the program's total score: publishing withdraws the proposals the run
changed and proposes the new ones.

The run itself (up to half a minute of CPU for 100,000 learners) happens in a thread of its own,
one run at a time per process: on the event loop it would stop everything else the service does
meanwhile, its Kafka consumers' heartbeats too (the group would evict them after 10 s), its
health checks and every other request. One at a time, as a large run holds gigabytes: a run
whose request was cancelled still holds the thread until it ends. A large run's min-cost flow goes
further, to a process of its own (``solver_process``): OR-Tools would keep the interpreter lock.
"""

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from uuid import UUID

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from crossgen_matching import admission, optimiser, roster, service, solver_process
from crossgen_matching.models import Pairing, PairRule, Participant, Program
from crossgen_shared.errors import Conflict, NotFound, Unprocessable
from crossgen_shared.events import Role
from crossgen_shared.unit_of_work import UnitOfWork

PAIR_RULES = ("pinned", "forbidden")
PROPOSALS_AT_A_TIME = 500
_RUNNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whole-program-run")
# Half a minute of CPU at 100,000 learners on two cores; ten times that on a slow, busy host.
_WAITING_FOR_A_RUN = text("SET LOCAL idle_in_transaction_session_timeout = '10min'")


@dataclass(frozen=True)
class Run:
    current: roster.Roster
    result: optimiser.MatchResult
    kept: frozenset[optimiser.Pair]  # open proposals the run proposes again
    withdrawn: frozenset[optimiser.Pair]
    new: tuple[optimiser.Pairing, ...]

    @property
    def problem(self) -> str | None:
        """Why publishing would propose nothing to people who wait, if so."""
        if self.result.unmatched and not self.result.pairings:
            reasons = Counter(u.reason for u in self.result.unmatched).most_common(3)
            why = "; ".join(f"{reason} ({count})" for reason, count in reasons)
            return f"no waiting learner has an eligible mentor: {why}"
        return None


async def preview(uow: UnitOfWork, program_id: UUID) -> Run:
    """The dry run: what publishing would do now. Writes nothing."""
    program = await admission.program(uow, program_id)
    current = await roster.load(uow.session, program_id)
    await _check_both_roles(uow, program, current)
    return await _run_aside(uow, current)


async def publish(uow: UnitOfWork, program_id: UUID) -> Run:
    """Match the whole program and propose the result, one run per program at a time."""
    program = await admission.program(uow, program_id)
    # Advisory, so that a second run is told at once instead of waiting; released at commit.
    locked = await uow.session.scalar(
        select(func.pg_try_advisory_xact_lock(run_lock_key(program_id)))
    )
    if not locked:
        raise Conflict("a matching run is in progress")
    # No newcomer's repair runs alongside.
    await service.lock_matching(uow, program_id)
    current = await roster.load(uow.session, program_id)
    await _check_both_roles(uow, program, current)
    run = await _run_aside(uow, current)
    if run.problem:
        raise Unprocessable(run.problem)
    withdrawn = [run.current.proposals[pair].id for pair in sorted(run.withdrawn)]
    await service.withdraw(uow, await service.pairings(uow, withdrawn), None, "re-matched")
    for start in range(0, len(run.new), PROPOSALS_AT_A_TIME):
        for proposal in run.new[start : start + PROPOSALS_AT_A_TIME]:
            await service.propose(uow, program_id, run.current.participants, proposal)
        # Written as they go, the event loop let go meanwhile: proposing 20,000 at once, and
        # writing them at the commit, held it for 4 s.
        await uow.write_held()
        await uow.session.flush()
    return run


async def weights(uow: UnitOfWork, program_id: UUID) -> optimiser.Weights:
    program = await admission.program(uow, program_id)
    return optimiser.Weights(**program.weights) if program.weights else optimiser.Weights()


async def set_weights(uow: UnitOfWork, program_id: UUID, chosen: optimiser.Weights) -> None:
    """Score the program's later matching with ``chosen``; proposals already made stay."""
    (await admission.program(uow, program_id)).weights = asdict(chosen)


async def set_skill_catalogue(uow: UnitOfWork, program_id: UUID, names: list[str] | None) -> None:
    """Refuse later enrolments and profile changes with skills outside ``names`` (None: take
    any). Participants already in keep the skills they have, known or not."""
    (await admission.program(uow, program_id)).skill_catalogue = names


async def add_rule(
    uow: UnitOfWork, program_id: UUID, kind: str, learner_id: UUID, mentor_id: UUID
) -> None:
    """Pin or forbid a pair; a pin the optimiser cannot honour is refused with its reason. A
    proposal between a pair now forbidden is withdrawn and both are matched again; an accepted
    pairing stays (both agreed to it), and the rule holds for every later match."""
    await admission.program(uow, program_id)
    learner = await uow.session.get(Participant, learner_id)
    mentor = await uow.session.get(Participant, mentor_id)
    for who, role in ((learner, "learner"), (mentor, "mentor")):
        if who is None or who.program_id != program_id or who.status != "active":
            raise Unprocessable(f"{role} is not an active participant of program {program_id}")
        if who.role != role:
            raise Unprocessable(f"{who.id} is a {who.role}, not a {role}")
    uow.session.add(
        PairRule(program_id=program_id, learner_id=learner_id, mentor_id=mentor_id, kind=kind)
    )
    try:
        await uow.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the pair is already {kind}") from exc
    if kind == "forbidden":
        await _withdraw_proposal(uow, program_id, learner_id, mentor_id)
    if kind == "pinned":
        try:
            # A run fixes its pins first, in ``prepare``, and refuses one that cannot hold: the
            # rest of a run (candidates, solve), 90 % of it at 100k learners, is not needed.
            optimiser.prepare((await roster.load(uow.session, program_id)).program)
        except optimiser.PinError as exc:
            rule = f" ({exc.rule.name.lower()})" if exc.rule else ""
            raise Unprocessable(f"cannot pin{rule}: {exc}") from exc


async def _withdraw_proposal(
    uow: UnitOfWork, program_id: UUID, learner_id: UUID, mentor_id: UUID
) -> None:
    await service.lock_matching(uow, program_id)  # before the pairing, as every decision
    proposal = await uow.session.scalar(
        select(Pairing)
        .where(
            Pairing.learner_id == learner_id,
            Pairing.mentor_id == mentor_id,
            Pairing.status == "proposed",
        )
        .with_for_update()
    )
    if proposal is None:
        return
    await service.withdraw(uow, [proposal], None, "the program owner forbade this pair")
    await uow.session.flush()
    for who in (learner_id, mentor_id):
        await service.match_newcomer(uow, who)


async def remove_rule(
    uow: UnitOfWork, program_id: UUID, kind: str, learner_id: UUID, mentor_id: UUID
) -> None:
    removed = await uow.session.execute(
        delete(PairRule).where(
            PairRule.program_id == program_id,
            PairRule.kind == kind,
            PairRule.learner_id == learner_id,
            PairRule.mentor_id == mentor_id,
        )
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"the pair is not {kind} in program {program_id}")


async def _check_both_roles(uow: UnitOfWork, program: Program, current: roster.Roster) -> None:
    """Refuse (422) a run with nobody in a role, saying why, and whether the rules are to blame."""
    enrolled: dict[Role, int] = {
        "mentor": len(current.program.mentors),
        "learner": len(current.program.learners),
    }
    for role, count in enrolled.items():
        if count:
            continue
        why = f"the program has no {role}s: nobody is enrolled as {role}"
        rules = admission.rules_of(program)
        if not rules.of(role).admits_anyone:
            meeting = (await admission.eligible(uow.session, rules))[role]
            why += (
                f"; {meeting} employees in the directory meet the {role} rules"
                f" ({rules.of(role).describe()})"
            )
        raise Unprocessable(why)


async def _run_aside(uow: UnitOfWork, current: roster.Roster) -> Run:
    """``_run`` in the runs' thread, the event loop going on meanwhile (see the module's doc).
    ``uow``'s transaction waits for it without a word to the server, longer than a service lets
    a transaction sit idle (``*_DATABASE_IDLE_TRANSACTION_TIMEOUT``): it has a limit of its own."""
    await uow.session.execute(_WAITING_FOR_A_RUN)
    return await asyncio.get_running_loop().run_in_executor(_RUNNER, _run, current)


def _run(current: roster.Roster) -> Run:
    try:
        result = optimiser.match_program(current.program, solve=solver_process.solve)
    except optimiser.PinError as exc:  # the program changed since the pin was made
        raise Unprocessable(str(exc)) from exc
    chosen = {optimiser.Pair(p.learner_id, p.mentor_id): p for p in result.pairings}
    open_ = current.proposals.keys()
    return Run(
        current=current,
        result=result,
        kept=frozenset(open_ & chosen.keys()),
        withdrawn=frozenset(open_ - chosen.keys()),
        new=tuple(p for pair, p in chosen.items() if pair not in open_),
    )


def run_lock_key(program_id: UUID) -> int:
    return int.from_bytes(program_id.bytes[:8], "big", signed=True)
