"""Error answers the simulator gives, in Telegram's exact shapes and wording."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "NoCallbackAnswer",
    "SimulatorError",
    "WaitTimeout",
    "bad_request",
    "forbidden",
]


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description and optional parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        """Build the error; ``description`` is the full text, e.g. ``"Bad Request: …"``."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str, parameters: dict[str, Any] | None = None) -> ApiError:
    """A 400 answer with ``"Bad Request: " + reason``."""
    return ApiError(400, f"Bad Request: {reason}", parameters)


def forbidden(reason: str) -> ApiError:
    """A 403 answer with ``"Forbidden: " + reason``."""
    return ApiError(403, f"Forbidden: {reason}")


class SimulatorError(Exception):
    """A test drove the simulator in a way that makes no sense (not a Bot API error)."""


class WaitTimeout(TimeoutError):
    """``sim.wait_for``/``sim.idle`` gave up; the message says what was seen meanwhile."""


class NoCallbackAnswer(TimeoutError):
    """The bot did not call answerCallbackQuery for a pressed button in time."""
