"""How gates wait and when they remind: one Variable an operator edits, read by every gate and the board."""

from __future__ import annotations

from pydantic import BaseModel, Field

WAIT_SETTINGS_VARIABLE = "hris_wait_settings"


class WaitSettings(BaseModel):
    """How a waiting run checks for an answer and how often it reminds people."""

    poll_seconds: float = Field(
        default=10, gt=0, description="How often an in-process pause looks for an answer"
    )
    remind_after_hours: float = Field(
        default=24,
        gt=0,
        description="Send a reminder after this long without an answer, and again after each interval",
    )
