"""Named domain errors. Each carries a message key that handlers translate for the user."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the domain refused the action; nothing was written."""

    key = "error.domain"

    def __init__(self, detail: str = "", **params: Any) -> None:
        super().__init__(detail or self.key)
        self.params: dict[str, Any] = params


class InvalidInput(DomainError):
    """Bad input: empty or oversized text, malformed values."""

    key = "error.invalid_input"


class TextEmpty(InvalidInput):
    """A required text was empty."""

    key = "error.text_empty"


class TextTooLong(InvalidInput):
    """A text exceeded the policy's limit."""

    key = "error.text_too_long"


class UnknownCode(InvalidInput):
    """A unit, category, district or track code that the policy does not know."""

    key = "error.unknown_code"


class UnitDisabled(DomainError):
    """The unit exists but is disabled and cannot receive cases."""

    key = "error.unit_disabled"


class CaseNotFound(DomainError):
    """No such case — or none the actor may know of (outsiders learn nothing)."""

    key = "error.case_not_found"


class IllegalTransition(DomainError):
    """The case is not in a state that allows this action."""

    key = "error.illegal_transition"


class NotAllowed(DomainError):
    """The actor's roles do not allow this action."""

    key = "error.not_allowed"


class NotYourCase(NotAllowed):
    """A liaison acting on another unit's case, or a citizen on another citizen's case."""

    key = "error.not_your_case"


class AlreadySigned(IllegalTransition):
    """The assignment was already signed for."""

    key = "error.already_signed"


class ReturnNotAllowed(IllegalTransition):
    """The unit may not return this case (ruled unfounded before, or already signed)."""

    key = "error.return_not_allowed"


class ExtensionPastCap(DomainError):
    """The requested extension goes beyond the policy's cap."""

    key = "error.extension_past_cap"


class ExtensionPending(IllegalTransition):
    """An extension request is already waiting for a decision."""

    key = "error.extension_pending"


class CoUnitsNotReported(IllegalTransition):
    """The lead unit cannot answer finally before every co-unit has reported."""

    key = "error.co_units_not_reported"


class QuestionOpen(IllegalTransition):
    """A question to the citizen is still open."""

    key = "error.question_open"


class NoOpenQuestion(IllegalTransition):
    """There is no open question to answer."""

    key = "error.no_open_question"


class TrackNotSet(IllegalTransition):
    """The case needs a track before it can be assigned."""

    key = "error.track_not_set"


class CoUnitsNeedCoordinatedTrack(InvalidInput):
    """Co-units are only for the coordinated track."""

    key = "error.co_units_need_coordinated"


class RateLimited(DomainError):
    """Too many filings from one citizen in the policy's window."""

    key = "error.rate_limited"


class DuplicateUpdate(DomainError):
    """This Telegram update was processed before; nothing happens twice."""

    key = "error.duplicate_update"


class ChatAlreadyBound(DomainError):
    """The group already plays another part."""

    key = "error.chat_already_bound"
