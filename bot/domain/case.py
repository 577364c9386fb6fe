"""The case aggregate: states, assignments and every transition with its guard (DESIGN §2).

Each transition checks its guard, changes the case and records a past-tense `Event`.
Nothing here reads the clock or touches storage: `now` and the policy are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain import errors
from bot.domain.policy import Policy, Track, TrackPolicy


class CaseState(StrEnum):
    """Where a case stands."""

    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"  # final answer waiting for review
    REPLIED = "replied"  # final answer published; waiting for the rating
    CLOSED = "closed"
    REJECTED = "rejected"


OPEN_STATES = frozenset(
    {CaseState.NEW, CaseState.ASSIGNED, CaseState.IN_PROGRESS, CaseState.ANSWERED}
)


class Role(StrEnum):
    """Who acted. Staff roles are data in the database; citizen and liaison are relations."""

    CITIZEN = "citizen"
    LIAISON = "liaison"
    DISPATCHER = "dispatcher"
    SUPERVISOR = "supervisor"
    LEADER = "leader"
    ADMIN = "admin"
    SYSTEM = "system"


class AssignmentRole(StrEnum):
    """Lead unit (主办) or co-unit (协办)."""

    LEAD = "lead"
    CO = "co"


class AssignmentState(StrEnum):
    """Where one unit's assignment stands."""

    ASSIGNED = "assigned"  # waiting for sign-for
    SIGNED = "signed"  # being handled
    RETURNED = "returned"  # sent back to the desk, waiting for its ruling
    REPORTED = "reported"  # co-unit input given, or the lead's final answer published
    WITHDRAWN = "withdrawn"  # replaced by another unit or a later round


ACTIVE_ASSIGNMENT_STATES = frozenset(
    {AssignmentState.ASSIGNED, AssignmentState.SIGNED, AssignmentState.RETURNED}
)


class ReturnReason(StrEnum):
    """Coded reasons a unit may return an assignment."""

    NOT_OUR_DISTRICT = "district"  # 属地不符
    UNCLEAR_OWNERSHIP = "ownership"  # 权属不清
    NOT_OUR_DUTY = "duty"  # 职能交叉


class RejectReason(StrEnum):
    """Why the desk rejected a message."""

    INVALID = "invalid"
    DUPLICATE = "duplicate"
    OUT_OF_SCOPE = "out_of_scope"


class Rating(StrEnum):
    """The citizen's verdict on the published answer."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"
    NOT_RATED = "not_rated"


class AnswerKind(StrEnum):
    """What a unit posted."""

    INTERIM = "interim"
    FINAL = "final"
    INPUT = "input"  # a co-unit's input to the lead


class AnswerState(StrEnum):
    """Where a posted answer stands."""

    PUBLISHED = "published"
    PENDING_REVIEW = "pending_review"
    SENT_BACK = "sent_back"
    INTERNAL = "internal"  # co-unit input: seen by the lead, not the citizen


class Decision(StrEnum):
    """A pending request's outcome."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a Telegram user id (None for the system) and the role they act in."""

    user_id: int | None
    role: Role
    unit_code: str | None = None

    @classmethod
    def system(cls) -> Actor:
        """The scheduler and other automatic steps."""
        return cls(None, Role.SYSTEM)


@dataclass(frozen=True)
class Event:
    """Something that happened to a case; appended to its timeline, never changed."""

    kind: str
    at: datetime
    actor: Actor
    unit_code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Assignment:
    """One unit's assignment on one round of a case, with its own deadlines and stages."""

    unit_code: str
    role: AssignmentRole
    round: int
    assigned_at: datetime
    sign_due: datetime | None  # None on a reopened round: the unit already holds the case
    reply_due: datetime
    resolve_due: datetime | None
    state: AssignmentState = AssignmentState.ASSIGNED
    id: int | None = None
    signed_at: datetime | None = None
    replied_at: datetime | None = None
    resolved_at: datetime | None = None
    sign_on_time: bool | None = None
    reply_on_time: bool | None = None
    resolve_on_time: bool | None = None
    may_return: bool = True
    returns: int = 0
    paused_at: datetime | None = None
    next_check_at: datetime | None = None
    chase_fired: list[str] = field(default_factory=list)

    @property
    def is_active(self) -> bool:
        """Still being handled on the current round."""
        return self.state in ACTIVE_ASSIGNMENT_STATES

    def open_stage_deadlines(self) -> dict[str, datetime]:
        """The deadlines of the stages this unit has not finished yet."""
        stages: dict[str, datetime] = {}
        if self.state not in ACTIVE_ASSIGNMENT_STATES:
            return stages
        if self.sign_due is not None and self.signed_at is None:
            stages["sign"] = self.sign_due
        if self.replied_at is None:
            stages["reply"] = self.reply_due
        if self.role == AssignmentRole.LEAD and self.resolved_at is None and self.resolve_due:
            stages["resolve"] = self.resolve_due
        return stages


@dataclass
class Answer:
    """A unit's interim answer, final answer or co-unit input."""

    kind: AnswerKind
    unit_code: str
    author_id: int | None
    text: str
    at: datetime
    state: AnswerState
    round: int
    attachments: list[dict[str, Any]] = field(default_factory=list)
    review_comment: str | None = None
    id: int | None = None


@dataclass
class Question:
    """A question from a unit (or staff, for 联系回访) relayed to the citizen through the bot."""

    asked_by: int | None
    unit_code: str | None
    text: str
    asked_at: datetime
    answer: str | None = None
    answered_at: datetime | None = None
    pauses_clock: bool = False
    id: int | None = None

    @property
    def is_open(self) -> bool:
        """Still waiting for the citizen."""
        return self.answered_at is None


@dataclass
class Extension:
    """A unit's request to move its resolve deadline."""

    unit_code: str
    requested_by: int | None
    new_due: datetime
    reason: str
    requested_at: datetime
    decision: Decision = Decision.PENDING
    decided_by: int | None = None
    decided_at: datetime | None = None
    id: int | None = None


@dataclass
class RatingRecord:
    """One round's rating, with the unit's appeal (核减) if any."""

    round: int
    rating: Rating
    at: datetime
    unit_code: str | None
    comment: str | None = None
    appeal: Decision | None = None
    appeal_reason: str | None = None
    id: int | None = None

    @property
    def counts_for_satisfaction(self) -> bool:
        """Rated by the citizen and not removed by an accepted appeal."""
        return self.rating != Rating.NOT_RATED and self.appeal != Decision.APPROVED


def check_text(text: str | None, *, limit: int, minimum: int = 1, field_name: str = "text") -> str:
    """Trim a user text and check it against the limits, or raise a keyed error."""
    cleaned = (text or "").strip()
    if len(cleaned) < max(minimum, 1):
        raise errors.TextEmpty(field_name, field=field_name, minimum=minimum)
    if len(cleaned) > limit:
        raise errors.TextTooLong(field_name, field=field_name, limit=limit, length=len(cleaned))
    return cleaned


def stage_on_time(done_at: datetime, due: datetime) -> bool:
    """A stage is on time when done by its deadline (inclusive)."""
    return done_at <= due


@dataclass
class Case:
    """A citizen's message and everything done about it."""

    number: str
    citizen_id: int
    category: str
    district: str
    text: str
    filed_at: datetime
    state: CaseState = CaseState.NEW
    id: int | None = None
    track: Track | None = None
    round: int = 1
    location: tuple[float, float] | None = None
    contact_shared: bool = False
    reject_reason: RejectReason | None = None
    reject_note: str | None = None
    duplicate_of: str | None = None
    returns_count: int = 0
    co_input_waived: bool = False
    published_at: datetime | None = None
    callback_due: datetime | None = None
    callback_reminded: bool = False
    closed_at: datetime | None = None
    close_reason: str | None = None
    escalation_level: str | None = None
    assignments: list[Assignment] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    ratings: list[RatingRecord] = field(default_factory=list)
    new_events: list[Event] = field(default_factory=list)

    # -- reading -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Not yet closed or rejected (a replied case waits for its rating)."""
        return self.state not in (CaseState.CLOSED, CaseState.REJECTED)

    @property
    def lead(self) -> Assignment | None:
        """The active lead assignment of the current round, if any."""
        for assignment in self.assignments:
            if (
                assignment.role == AssignmentRole.LEAD
                and assignment.round == self.round
                and assignment.state != AssignmentState.WITHDRAWN
            ):
                return assignment
        return None

    @property
    def co_units(self) -> list[Assignment]:
        """The co-unit assignments of the current round that were not withdrawn."""
        return [
            a
            for a in self.assignments
            if a.role == AssignmentRole.CO
            and a.round == self.round
            and a.state != AssignmentState.WITHDRAWN
        ]

    def assignment_of(self, unit_code: str) -> Assignment:
        """The current-round assignment of a unit; NotYourCase if the unit has none."""
        for assignment in self.assignments:
            if (
                assignment.unit_code == unit_code
                and assignment.round == self.round
                and assignment.state != AssignmentState.WITHDRAWN
            ):
                return assignment
        raise errors.NotYourCase(self.number, case=self.number, unit=unit_code)

    @property
    def open_question(self) -> Question | None:
        """The question still waiting for the citizen, if any."""
        return next((q for q in self.questions if q.is_open), None)

    @property
    def pending_extension(self) -> Extension | None:
        """The extension request waiting for the desk, if any."""
        return next((e for e in self.extensions if e.decision == Decision.PENDING), None)

    @property
    def pending_answer(self) -> Answer | None:
        """The final answer waiting for review, if any."""
        return next((a for a in self.answers if a.state == AnswerState.PENDING_REVIEW), None)

    @property
    def latest_rating(self) -> RatingRecord | None:
        """The most recent rating."""
        return self.ratings[-1] if self.ratings else None

    @property
    def handling_units(self) -> list[str]:
        """Codes of the units with an active assignment (lead first)."""
        units = [a.unit_code for a in self.assignments if a.round == self.round and a.is_active]
        lead = self.lead
        if lead and lead.unit_code in units:
            units.remove(lead.unit_code)
            units.insert(0, lead.unit_code)
        return units

    def _record(
        self, kind: str, at: datetime, actor: Actor, unit_code: str | None = None, **details: Any
    ) -> Event:
        event = Event(kind, at, actor, unit_code, details)
        self.new_events.append(event)
        return event

    def _require(self, *states: CaseState, action: str) -> None:
        if self.state not in states:
            raise errors.IllegalTransition(
                action, case=self.number, state=self.state.value, action=action
            )

    # -- filing and triage ---------------------------------------------------------------

    @classmethod
    def file(
        cls,
        *,
        number: str,
        citizen_id: int,
        category: str,
        district: str,
        text: str,
        now: datetime,
        policy: Policy,
        location: tuple[float, float] | None = None,
        contact_shared: bool = False,
    ) -> Case:
        """A citizen files a message; it becomes a new case waiting for the desk."""
        if category not in policy.categories:
            raise errors.UnknownCode(category, kind="category", code=category)
        if district not in policy.districts:
            raise errors.UnknownCode(district, kind="district", code=district)
        cleaned = check_text(text, limit=policy.limits.text_max, minimum=policy.limits.text_min)
        case = cls(
            number=number,
            citizen_id=citizen_id,
            category=category,
            district=district,
            text=cleaned,
            filed_at=now,
            location=location,
            contact_shared=contact_shared,
        )
        case._record(
            "CaseFiled",
            now,
            Actor(citizen_id, Role.CITIZEN),
            category=category,
            district=district,
        )
        return case

    def record_repeat(self, now: datetime, attachments: int = 0) -> None:
        """The citizen sent the same message again: noted here instead of a new case."""
        self._record(
            "RepeatFiled", now, Actor(self.citizen_id, Role.CITIZEN), attachments=attachments
        )

    def set_track(self, track: Track | str, actor: Actor, now: datetime, policy: Policy) -> None:
        """The desk puts the case on a track; deadlines of active assignments follow it."""
        try:
            new_track = Track(track)
        except ValueError:
            raise errors.UnknownCode(str(track), kind="track", code=str(track)) from None
        self._require(CaseState.NEW, CaseState.ASSIGNED, CaseState.IN_PROGRESS, action="set_track")
        if new_track == self.track:
            return
        if new_track != Track.COORDINATED and any(
            a.role == AssignmentRole.CO and a.is_active for a in self.assignments
        ):
            raise errors.CoUnitsNeedCoordinatedTrack(self.number, case=self.number)
        previous = self.track
        self.track = new_track
        for assignment in self.assignments:
            if assignment.round == self.round and assignment.is_active:
                _set_deadlines(assignment, policy.track(new_track), policy, assignment.assigned_at)
        self._record(
            "TrackSet",
            now,
            actor,
            track=new_track.value,
            previous=previous.value if previous else None,
        )

    def assign(
        self,
        lead_unit: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
        co_units: tuple[str, ...] = (),
    ) -> None:
        """The desk assigns a lead unit (and co-units on the coordinated track).

        A case back at the desk after a return or a last-round unsatisfied rating is
        assigned the same way; the returned assignment is withdrawn.
        """
        self._require(CaseState.NEW, action="assign")
        if self.track is None:
            raise errors.TrackNotSet(self.number, case=self.number)
        if co_units and self.track != Track.COORDINATED:
            raise errors.CoUnitsNeedCoordinatedTrack(self.number, case=self.number)
        if lead_unit in co_units or len(set(co_units)) != len(co_units):
            raise errors.InvalidInput("co_units", field="co_units")
        track_policy = policy.track(self.track)
        for assignment in self.assignments:
            if (
                assignment.round == self.round
                and assignment.role == AssignmentRole.LEAD
                and assignment.state != AssignmentState.WITHDRAWN
            ):
                assignment.state = AssignmentState.WITHDRAWN
                assignment.next_check_at = None
        existing_co = {a.unit_code for a in self.co_units}
        self.assignments.append(
            _new_assignment(lead_unit, AssignmentRole.LEAD, self.round, now, track_policy, policy)
        )
        for code in co_units:
            if code not in existing_co:
                self.assignments.append(
                    _new_assignment(code, AssignmentRole.CO, self.round, now, track_policy, policy)
                )
        self.state = CaseState.ASSIGNED
        self._record(
            "CaseAssigned",
            now,
            actor,
            lead_unit,
            lead=lead_unit,
            co_units=list(co_units),
            track=self.track.value,
            round=self.round,
        )

    def reject(
        self,
        reason: RejectReason | str,
        actor: Actor,
        now: datetime,
        note: str | None = None,
        duplicate_of: str | None = None,
        note_limit: int = 1000,
    ) -> None:
        """The desk rejects the message (invalid, duplicate of another case, out of scope)."""
        self._require(CaseState.NEW, action="reject")
        try:
            code = RejectReason(reason)
        except ValueError:
            raise errors.UnknownCode(str(reason), kind="reject_reason", code=str(reason)) from None
        if code == RejectReason.DUPLICATE and (not duplicate_of or duplicate_of == self.number):
            raise errors.InvalidInput("duplicate_of", field="duplicate_of")
        cleaned_note = check_text(note, limit=note_limit, field_name="note") if note else None
        if any(a.is_active for a in self.assignments):
            # A case back at the desk after a return: close the returned assignment first.
            for assignment in self.assignments:
                if assignment.is_active:
                    assignment.state = AssignmentState.WITHDRAWN
                    assignment.next_check_at = None
        self.state = CaseState.REJECTED
        self.reject_reason = code
        self.reject_note = cleaned_note
        self.duplicate_of = duplicate_of if code == RejectReason.DUPLICATE else None
        self.closed_at = now
        self._record(
            "CaseRejected",
            now,
            actor,
            reason=code.value,
            note=cleaned_note,
            duplicate_of=self.duplicate_of,
        )

    # -- the unit's work -----------------------------------------------------------------

    def sign(self, unit_code: str, actor: Actor, now: datetime) -> Assignment:
        """A unit signs for its assignment (签收)."""
        assignment = self.assignment_of(unit_code)
        if assignment.state != AssignmentState.ASSIGNED or assignment.signed_at is not None:
            if assignment.signed_at is not None:
                raise errors.AlreadySigned(self.number, case=self.number, unit=unit_code)
            raise errors.IllegalTransition(
                "sign", case=self.number, state=assignment.state.value, action="sign"
            )
        assignment.state = AssignmentState.SIGNED
        assignment.signed_at = now
        assignment.sign_on_time = (
            stage_on_time(now, assignment.sign_due) if assignment.sign_due else None
        )
        if assignment.role == AssignmentRole.LEAD and self.state == CaseState.ASSIGNED:
            self.state = CaseState.IN_PROGRESS
        self._record(
            "AssignmentSigned",
            now,
            actor,
            unit_code,
            on_time=assignment.sign_on_time,
            role=assignment.role.value,
        )
        return assignment

    def return_to_desk(
        self,
        unit_code: str,
        reason: ReturnReason | str,
        note: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
    ) -> bool:
        """A unit returns an unsigned assignment to the desk with a coded reason (退回).

        Returns True when the case has now been returned too often and goes to the
        supervisor.
        """
        try:
            code = ReturnReason(reason)
        except ValueError:
            raise errors.UnknownCode(str(reason), kind="return_reason", code=str(reason)) from None
        cleaned = check_text(note, limit=policy.limits.note_max, field_name="note")
        assignment = self.assignment_of(unit_code)
        if assignment.state != AssignmentState.ASSIGNED or not assignment.may_return:
            raise errors.ReturnNotAllowed(self.number, case=self.number, unit=unit_code)
        assignment.state = AssignmentState.RETURNED
        assignment.returns += 1
        assignment.next_check_at = None
        self.returns_count += 1
        if assignment.role == AssignmentRole.LEAD:
            self.state = CaseState.NEW
        self._record(
            "AssignmentReturned",
            now,
            actor,
            unit_code,
            reason=code.value,
            note=cleaned,
            returns=self.returns_count,
            role=assignment.role.value,
        )
        too_many = self.returns_count >= policy.chasing.max_returns
        if too_many:
            self._escalate("supervision", "too_many_returns", Actor.system(), now)
        return too_many

    def rule_return_unfounded(
        self, unit_code: str, actor: Actor, now: datetime, note: str | None = None
    ) -> None:
        """The desk rules a return unfounded (审定): back to the same unit, no second return.

        The deadlines still run from the original assignment.
        """
        assignment = self.assignment_of(unit_code)
        if assignment.state != AssignmentState.RETURNED:
            raise errors.IllegalTransition(
                "rule_return", case=self.number, state=assignment.state.value, action="rule_return"
            )
        assignment.state = AssignmentState.ASSIGNED
        assignment.may_return = False
        assignment.next_check_at = now
        if assignment.role == AssignmentRole.LEAD:
            self.state = CaseState.ASSIGNED
        self._record(
            "ReturnRuledUnfounded", now, actor, unit_code, note=note, role=assignment.role.value
        )

    def reassign_co_unit(
        self, old_unit: str, new_unit: str, actor: Actor, now: datetime, policy: Policy
    ) -> None:
        """The desk replaces a co-unit that returned its assignment."""
        assignment = self.assignment_of(old_unit)
        if assignment.role != AssignmentRole.CO or assignment.state != AssignmentState.RETURNED:
            raise errors.IllegalTransition(
                "reassign", case=self.number, state=assignment.state.value, action="reassign"
            )
        if new_unit in self.handling_units:
            raise errors.InvalidInput("co_units", field="co_units")
        assert self.track is not None
        assignment.state = AssignmentState.WITHDRAWN
        self.assignments.append(
            _new_assignment(
                new_unit, AssignmentRole.CO, self.round, now, policy.track(self.track), policy
            )
        )
        self._record("CoUnitReassigned", now, actor, new_unit, previous=old_unit)

    def reassign(self, unit_code: str, actor: Actor, now: datetime, policy: Policy) -> None:
        """The desk moves an active case to another lead unit; deadlines start afresh."""
        self._require(CaseState.ASSIGNED, CaseState.IN_PROGRESS, action="reassign")
        lead = self.lead
        if lead is None or lead.unit_code == unit_code:
            raise errors.InvalidInput("unit", field="unit")
        if self.open_question is not None:
            raise errors.QuestionOpen(self.number, case=self.number)
        assert self.track is not None
        previous = lead.unit_code
        lead.state = AssignmentState.WITHDRAWN
        lead.next_check_at = None
        self.assignments.append(
            _new_assignment(
                unit_code, AssignmentRole.LEAD, self.round, now, policy.track(self.track), policy
            )
        )
        self.state = CaseState.ASSIGNED
        self._record("CaseReassigned", now, actor, unit_code, previous=previous, lead=unit_code)

    def add_co_unit(self, unit_code: str, actor: Actor, now: datetime, policy: Policy) -> None:
        """The desk adds a co-unit to a coordinated case after assigning the lead."""
        self._require(CaseState.ASSIGNED, CaseState.IN_PROGRESS, action="add_co_unit")
        if self.track != Track.COORDINATED:
            raise errors.CoUnitsNeedCoordinatedTrack(self.number, case=self.number)
        if unit_code in self.handling_units or any(
            a.unit_code == unit_code and a.round == self.round and a.state != "withdrawn"
            for a in self.assignments
        ):
            raise errors.InvalidInput("co_units", field="co_units")
        self.assignments.append(
            _new_assignment(
                unit_code, AssignmentRole.CO, self.round, now, policy.track(self.track), policy
            )
        )
        self._record("CoUnitAdded", now, actor, unit_code)

    def grant_extension(
        self, new_due: datetime, reason: str, actor: Actor, now: datetime, policy: Policy
    ) -> Extension:
        """The desk moves the lead unit's resolve deadline itself (staff /extend)."""
        self._require(CaseState.ASSIGNED, CaseState.IN_PROGRESS, action="extend")
        lead = self.lead
        if lead is None or lead.resolve_due is None:
            raise errors.IllegalTransition(
                "extend", case=self.number, state=self.state.value, action="extend"
            )
        cleaned = check_text(reason, limit=policy.limits.note_max, field_name="reason")
        cap = policy.calendar.add_working_days(lead.assigned_at, policy.extension_cap_days)
        if new_due > cap:
            raise errors.ExtensionPastCap(
                self.number, case=self.number, cap=cap.isoformat(), requested=new_due.isoformat()
            )
        if new_due <= lead.resolve_due:
            raise errors.InvalidInput("new_due", field="new_due")
        extension = Extension(
            lead.unit_code,
            actor.user_id,
            new_due,
            cleaned,
            now,
            Decision.APPROVED,
            actor.user_id,
            now,
        )
        self.extensions.append(extension)
        lead.resolve_due = new_due
        lead.next_check_at = now
        self._record(
            "ExtensionApproved",
            now,
            actor,
            lead.unit_code,
            new_due=new_due.isoformat(),
            reason=cleaned,
        )
        return extension

    def request_extension(
        self,
        unit_code: str,
        new_due: datetime,
        reason: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
    ) -> Extension:
        """The lead unit asks to move its resolve deadline (申请延期)."""
        self._require(CaseState.IN_PROGRESS, action="request_extension")
        assignment = self.assignment_of(unit_code)
        if assignment.role != AssignmentRole.LEAD or assignment.resolve_due is None:
            raise errors.NotAllowed("extension", case=self.number)
        if self.pending_extension is not None:
            raise errors.ExtensionPending(self.number, case=self.number)
        cleaned = check_text(reason, limit=policy.limits.note_max, field_name="reason")
        if new_due <= assignment.resolve_due:
            raise errors.InvalidInput("new_due", field="new_due")
        cap = policy.calendar.add_working_days(assignment.assigned_at, policy.extension_cap_days)
        if new_due > cap:
            raise errors.ExtensionPastCap(
                self.number, case=self.number, cap=cap.isoformat(), requested=new_due.isoformat()
            )
        extension = Extension(unit_code, actor.user_id, new_due, cleaned, now)
        self.extensions.append(extension)
        self._record(
            "ExtensionRequested", now, actor, unit_code, new_due=new_due.isoformat(), reason=cleaned
        )
        return extension

    def decide_extension(self, approve: bool, actor: Actor, now: datetime) -> Extension:
        """The desk approves or denies the pending extension; approval moves the deadline."""
        extension = self.pending_extension
        if extension is None:
            raise errors.IllegalTransition(
                "decide_extension",
                case=self.number,
                state=self.state.value,
                action="decide_extension",
            )
        extension.decision = Decision.APPROVED if approve else Decision.DENIED
        extension.decided_by = actor.user_id
        extension.decided_at = now
        if approve and self.is_open:
            assignment = self.assignment_of(extension.unit_code)
            assignment.resolve_due = extension.new_due
            assignment.next_check_at = now
        self._record(
            "ExtensionApproved" if approve else "ExtensionDenied",
            now,
            actor,
            extension.unit_code,
            new_due=extension.new_due.isoformat(),
            reason=extension.reason,
        )
        return extension

    def _finish_reply_stage(self, assignment: Assignment, at: datetime) -> None:
        if assignment.replied_at is None:
            assignment.replied_at = at
            assignment.reply_on_time = stage_on_time(at, assignment.reply_due)

    def post_interim_answer(
        self,
        unit_code: str,
        text: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
        attachments: list[dict[str, Any]] | None = None,
    ) -> Answer:
        """The lead unit posts an interim answer (阶段答复), published to the citizen."""
        self._require(CaseState.IN_PROGRESS, action="interim_answer")
        assignment = self.assignment_of(unit_code)
        if assignment.role != AssignmentRole.LEAD or assignment.state != AssignmentState.SIGNED:
            raise errors.NotAllowed("interim_answer", case=self.number)
        cleaned = check_text(text, limit=policy.limits.answer_max, field_name="answer")
        answer = Answer(
            AnswerKind.INTERIM,
            unit_code,
            actor.user_id,
            cleaned,
            now,
            AnswerState.PUBLISHED,
            self.round,
            attachments or [],
        )
        self.answers.append(answer)
        self._finish_reply_stage(assignment, now)
        self._record(
            "InterimAnswerPosted",
            now,
            actor,
            unit_code,
            text=cleaned,
            attachments=len(answer.attachments),
        )
        return answer

    def post_co_unit_input(
        self,
        unit_code: str,
        text: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
        attachments: list[dict[str, Any]] | None = None,
    ) -> Answer:
        """A co-unit sends its input to the lead unit (协办意见)."""
        self._require(CaseState.IN_PROGRESS, CaseState.ASSIGNED, action="co_unit_input")
        assignment = self.assignment_of(unit_code)
        if assignment.role != AssignmentRole.CO or assignment.state != AssignmentState.SIGNED:
            raise errors.NotAllowed("co_unit_input", case=self.number)
        cleaned = check_text(text, limit=policy.limits.answer_max, field_name="answer")
        answer = Answer(
            AnswerKind.INPUT,
            unit_code,
            actor.user_id,
            cleaned,
            now,
            AnswerState.INTERNAL,
            self.round,
            attachments or [],
        )
        self.answers.append(answer)
        self._finish_reply_stage(assignment, now)
        assignment.state = AssignmentState.REPORTED
        assignment.next_check_at = None
        self._record("CoUnitInputPosted", now, actor, unit_code, text=cleaned)
        return answer

    def waive_co_unit_input(self, actor: Actor, now: datetime) -> None:
        """The desk lets the lead answer finally before every co-unit has reported."""
        self._require(CaseState.ASSIGNED, CaseState.IN_PROGRESS, action="waive_co_input")
        self.co_input_waived = True
        self._record("CoUnitInputWaived", now, actor)

    def post_final_answer(
        self,
        unit_code: str,
        text: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
        attachments: list[dict[str, Any]] | None = None,
    ) -> Answer:
        """The lead unit posts its final answer (办结答复): to review, or straight out."""
        self._require(CaseState.IN_PROGRESS, action="final_answer")
        assignment = self.assignment_of(unit_code)
        if assignment.role != AssignmentRole.LEAD or assignment.state != AssignmentState.SIGNED:
            raise errors.NotAllowed("final_answer", case=self.number)
        if self.open_question is not None:
            raise errors.QuestionOpen(self.number, case=self.number)
        waiting = [a.unit_code for a in self.co_units if a.state != AssignmentState.REPORTED]
        if waiting and not self.co_input_waived:
            raise errors.CoUnitsNotReported(self.number, case=self.number, units=waiting)
        cleaned = check_text(text, limit=policy.limits.answer_max, field_name="answer")
        assert self.track is not None
        needs_review = policy.track(self.track).review_before_publish
        answer = Answer(
            AnswerKind.FINAL,
            unit_code,
            actor.user_id,
            cleaned,
            now,
            AnswerState.PENDING_REVIEW,
            self.round,
            attachments or [],
        )
        self.answers.append(answer)
        self.state = CaseState.ANSWERED
        self._record(
            "FinalAnswerPosted",
            now,
            actor,
            unit_code,
            text=cleaned,
            needs_review=needs_review,
            attachments=len(answer.attachments),
        )
        if not needs_review:
            self.publish(Actor.system(), now, policy)
        return answer

    def publish(self, actor: Actor, now: datetime, policy: Policy) -> Answer:
        """The reviewed final answer goes to the citizen, who is asked to rate it.

        The unit's reply and resolve stages end at the moment it posted the answer that
        was published, so review time never counts against the unit.
        """
        self._require(CaseState.ANSWERED, action="publish")
        answer = self.pending_answer
        assert answer is not None, "an answered case always has a pending answer"
        assignment = self.assignment_of(answer.unit_code)
        answer.state = AnswerState.PUBLISHED
        self._finish_reply_stage(assignment, answer.at)
        assignment.resolved_at = answer.at
        assignment.resolve_on_time = (
            stage_on_time(answer.at, assignment.resolve_due) if assignment.resolve_due else None
        )
        assignment.state = AssignmentState.REPORTED
        assignment.next_check_at = None
        self.state = CaseState.REPLIED
        self.published_at = now
        self.callback_due = now + policy.callback.close_after
        self.callback_reminded = False
        self._record(
            "AnswerPublished",
            now,
            actor,
            answer.unit_code,
            resolve_on_time=assignment.resolve_on_time,
        )
        return answer

    def send_back(self, comment: str, actor: Actor, now: datetime, policy: Policy) -> Answer:
        """The desk sends the final answer back to the unit with a comment."""
        self._require(CaseState.ANSWERED, action="send_back")
        cleaned = check_text(comment, limit=policy.limits.note_max, field_name="comment")
        answer = self.pending_answer
        assert answer is not None, "an answered case always has a pending answer"
        answer.state = AnswerState.SENT_BACK
        answer.review_comment = cleaned
        self.state = CaseState.IN_PROGRESS
        self._record("AnswerSentBack", now, actor, answer.unit_code, comment=cleaned)
        return answer

    # -- the citizen's verdict -----------------------------------------------------------

    def rate(
        self,
        citizen_id: int,
        rating: Rating | str,
        now: datetime,
        policy: Policy,
        comment: str | None = None,
    ) -> RatingRecord:
        """The citizen rates the published answer: close, reopen, or back to the desk."""
        if citizen_id != self.citizen_id:
            raise errors.NotYourCase(self.number, case=self.number)
        self._require(CaseState.REPLIED, action="rate")
        try:
            verdict = Rating(rating)
        except ValueError:
            raise errors.UnknownCode(str(rating), kind="rating", code=str(rating)) from None
        if verdict == Rating.NOT_RATED:
            raise errors.InvalidInput("rating", field="rating")
        cleaned = (
            check_text(comment, limit=policy.limits.note_max, field_name="comment")
            if comment and comment.strip()
            else None
        )
        lead = self.lead
        record = RatingRecord(self.round, verdict, now, lead.unit_code if lead else None, cleaned)
        self.ratings.append(record)
        actor = Actor(citizen_id, Role.CITIZEN)
        self._record(
            "CaseRated",
            now,
            actor,
            record.unit_code,
            rating=verdict.value,
            comment=cleaned,
            round=self.round,
        )
        if verdict != Rating.UNSATISFIED:
            self._close("rated", actor, now)
        elif self.round < policy.callback.max_rounds and lead is not None:
            self._reopen(lead.unit_code, actor, now, policy, reason="unsatisfied", comment=cleaned)
        else:
            self.round += 1
            self.state = CaseState.NEW
            self.callback_due = None
            self._record("ReopenedToDesk", now, actor, round=self.round, comment=cleaned)
        return record

    def remind_callback(self, now: datetime) -> None:
        """The citizen was reminded to rate (once)."""
        self._require(CaseState.REPLIED, action="remind_callback")
        if self.callback_reminded:
            raise errors.IllegalTransition(
                "remind_callback",
                case=self.number,
                state=self.state.value,
                action="remind_callback",
            )
        self.callback_reminded = True
        self._record("CallbackReminded", now, Actor.system())

    def close_not_rated(self, now: datetime) -> None:
        """The callback window ended without a rating: closed as not rated."""
        self._require(CaseState.REPLIED, action="close_not_rated")
        lead = self.lead
        self.ratings.append(
            RatingRecord(self.round, Rating.NOT_RATED, now, lead.unit_code if lead else None)
        )
        self._close("not_rated", Actor.system(), now)

    def appeal_rating(
        self, unit_code: str, reason: str, actor: Actor, now: datetime, policy: Policy
    ) -> RatingRecord:
        """The lead unit appeals an unsatisfied rating as caused by objective limits (核减)."""
        record = next(
            (
                r
                for r in reversed(self.ratings)
                if r.rating == Rating.UNSATISFIED and r.unit_code == unit_code
            ),
            None,
        )
        if record is None:
            # Nothing to appeal: a matter of the case's state, not of who asks.
            raise errors.IllegalTransition(
                "appeal", case=self.number, state=self.state.value, action="appeal"
            )
        if record.appeal is not None:
            raise errors.IllegalTransition(
                "appeal", case=self.number, state=record.appeal.value, action="appeal"
            )
        record.appeal = Decision.PENDING
        record.appeal_reason = check_text(reason, limit=policy.limits.note_max, field_name="reason")
        self._record(
            "AppealFiled", now, actor, unit_code, reason=record.appeal_reason, round=record.round
        )
        return record

    def rule_appeal(self, accept: bool, actor: Actor, now: datetime) -> RatingRecord:
        """A supervisor accepts (the rating leaves the satisfaction rate) or rejects an appeal."""
        record = next((r for r in self.ratings if r.appeal == Decision.PENDING), None)
        if record is None:
            raise errors.IllegalTransition(
                "rule_appeal", case=self.number, state=self.state.value, action="rule_appeal"
            )
        record.appeal = Decision.APPROVED if accept else Decision.DENIED
        self._record(
            "AppealAccepted" if accept else "AppealRejected",
            now,
            actor,
            record.unit_code,
            round=record.round,
        )
        return record

    # -- questions through the bot ---------------------------------------------------------

    def ask_citizen(
        self,
        text: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
        unit_code: str | None = None,
    ) -> Question:
        """A unit (or staff, for 联系回访) asks the citizen a question through the bot.

        A lead unit's question pauses its resolve clock when the policy says so.
        """
        if not self.is_open and unit_code is not None:
            raise errors.IllegalTransition(
                "ask", case=self.number, state=self.state.value, action="ask"
            )
        if self.open_question is not None:
            raise errors.QuestionOpen(self.number, case=self.number)
        pauses = False
        if unit_code is not None:
            self._require(CaseState.IN_PROGRESS, CaseState.ASSIGNED, action="ask")
            assignment = self.assignment_of(unit_code)
            if assignment.state != AssignmentState.SIGNED:
                raise errors.NotAllowed("ask", case=self.number)
            if assignment.role == AssignmentRole.LEAD and policy.pause_resolve_while_asking:
                assignment.paused_at = now
                pauses = True
        cleaned = check_text(text, limit=policy.limits.note_max, field_name="question")
        question = Question(actor.user_id, unit_code, cleaned, now, pauses_clock=pauses)
        self.questions.append(question)
        self._record(
            "QuestionAsked" if unit_code else "ContactRelayed",
            now,
            actor,
            unit_code,
            text=cleaned,
            pauses_clock=pauses,
        )
        return question

    def answer_question(
        self, citizen_id: int, text: str, now: datetime, policy: Policy
    ) -> Question:
        """The citizen answers the open question; a paused resolve clock resumes."""
        if citizen_id != self.citizen_id:
            raise errors.NotYourCase(self.number, case=self.number)
        question = self.open_question
        if question is None:
            raise errors.NoOpenQuestion(self.number, case=self.number)
        cleaned = check_text(text, limit=policy.limits.text_max, field_name="answer")
        question.answer = cleaned
        question.answered_at = now
        if question.pauses_clock and question.unit_code:
            for assignment in self.assignments:
                if assignment.unit_code == question.unit_code and assignment.paused_at:
                    _resume(assignment, now, policy, self.track)
        self._record(
            "QuestionAnswered",
            now,
            Actor(citizen_id, Role.CITIZEN),
            question.unit_code,
            text=cleaned,
        )
        return question

    # -- staff ---------------------------------------------------------------------------

    def _escalate(self, level: str, reason: str, actor: Actor, now: datetime) -> None:
        self.escalation_level = level
        self._record("CaseEscalated", now, actor, level=level, reason=reason)

    def escalate(self, level: str, reason: str, actor: Actor, now: datetime) -> None:
        """Escalate an open case to the supervision or the leaders' group (督办)."""
        if level not in ("supervision", "leaders"):
            raise errors.UnknownCode(level, kind="level", code=level)
        if not self.is_open:
            raise errors.IllegalTransition(
                "escalate", case=self.number, state=self.state.value, action="escalate"
            )
        self._escalate(level, reason, actor, now)

    def instruct(self, text: str, actor: Actor, now: datetime, policy: Policy) -> None:
        """A leader writes an instruction (批示) on the case; it goes to the handling units."""
        cleaned = check_text(text, limit=policy.limits.note_max, field_name="instruction")
        self._record("LeaderInstructed", now, actor, text=cleaned, units=self.handling_units)

    def add_note(self, text: str, actor: Actor, now: datetime, policy: Policy) -> None:
        """A staff member adds an internal note to the timeline."""
        cleaned = check_text(text, limit=policy.limits.note_max, field_name="note")
        self._record("NoteAdded", now, actor, text=cleaned)

    def close(self, reason: str, actor: Actor, now: datetime, policy: Policy) -> None:
        """Staff close an open case by hand, with a reason."""
        if not self.is_open:
            raise errors.IllegalTransition(
                "close", case=self.number, state=self.state.value, action="close"
            )
        cleaned = check_text(reason, limit=policy.limits.note_max, field_name="reason")
        for assignment in self.assignments:
            if assignment.is_active:
                assignment.state = AssignmentState.WITHDRAWN
                assignment.next_check_at = None
        self._close("by_staff", actor, now, note=cleaned)

    def reopen(self, actor: Actor, now: datetime, policy: Policy, reason: str) -> None:
        """Staff reopen a closed or replied case to its last lead unit for another round."""
        self._require(CaseState.CLOSED, CaseState.REPLIED, action="reopen")
        cleaned = check_text(reason, limit=policy.limits.note_max, field_name="reason")
        last_lead = next(
            (a for a in reversed(self.assignments) if a.role == AssignmentRole.LEAD), None
        )
        if last_lead is None or self.track is None:
            raise errors.IllegalTransition(
                "reopen", case=self.number, state=self.state.value, action="reopen"
            )
        self.closed_at = None
        self.close_reason = None
        self._reopen(last_lead.unit_code, actor, now, policy, reason="by_staff", comment=cleaned)

    def _reopen(
        self,
        unit_code: str,
        actor: Actor,
        now: datetime,
        policy: Policy,
        *,
        reason: str,
        comment: str | None,
    ) -> None:
        assert self.track is not None
        for assignment in self.assignments:
            if assignment.round == self.round and assignment.is_active:
                assignment.state = AssignmentState.WITHDRAWN
                assignment.next_check_at = None
        self.round += 1
        track_policy = policy.track(self.track)
        # The unit already knows the case: the new round starts signed, with fresh
        # reply and resolve deadlines from now.
        assignment = _new_assignment(
            unit_code, AssignmentRole.LEAD, self.round, now, track_policy, policy
        )
        assignment.state = AssignmentState.SIGNED
        assignment.signed_at = now
        assignment.sign_due = None
        self.assignments.append(assignment)
        self.state = CaseState.IN_PROGRESS
        self.callback_due = None
        self._record(
            "CaseReopened", now, actor, unit_code, round=self.round, reason=reason, comment=comment
        )

    def _close(self, reason: str, actor: Actor, now: datetime, note: str | None = None) -> None:
        self.state = CaseState.CLOSED
        self.closed_at = now
        self.close_reason = reason
        self.callback_due = None
        self._record("CaseClosed", now, actor, reason=reason, note=note)


def _new_assignment(
    unit_code: str,
    role: AssignmentRole,
    round_: int,
    now: datetime,
    track_policy: TrackPolicy,
    policy: Policy,
) -> Assignment:
    assignment = Assignment(unit_code, role, round_, now, now, now, None)
    _set_deadlines(assignment, track_policy, policy, now)
    return assignment


def _set_deadlines(
    assignment: Assignment, track_policy: TrackPolicy, policy: Policy, start: datetime
) -> None:
    """All three deadlines count from the assignment (DESIGN §3); a co-unit's input is due
    with the reply deadline and it has no resolve stage."""
    calendar = policy.calendar
    assignment.sign_due = track_policy.sign.after(start, calendar)
    assignment.reply_due = track_policy.reply.after(start, calendar)
    assignment.resolve_due = (
        track_policy.resolve.after(start, calendar)
        if assignment.role == AssignmentRole.LEAD
        else None
    )
    assignment.next_check_at = start


def _resume(assignment: Assignment, now: datetime, policy: Policy, track: Track | None) -> None:
    """Move the resolve deadline by the time the clock was paused."""
    paused_at = assignment.paused_at
    assignment.paused_at = None
    if paused_at is None or assignment.resolve_due is None:
        return
    wall_clock = track is not None and policy.track(track).resolve.unit == "h"
    if wall_clock:
        assignment.resolve_due += max(now - paused_at, timedelta(0))
    else:
        paused = policy.calendar.working_time_between(paused_at, now)
        assignment.resolve_due = policy.calendar.add_working_time(assignment.resolve_due, paused)
    assignment.next_check_at = now
