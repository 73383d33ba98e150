"""The one error the web's actions raise: an HTTP status and a line for the technician."""
from __future__ import annotations


class ActionError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
