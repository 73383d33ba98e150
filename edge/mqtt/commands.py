"""What stands between a message on ``command/<action>`` and running it.

* a retained command is never run (it would run again after every restart): a warning and
  a ``refused`` result;
* one command of an action at a time: a backup command while the backup it started still
  runs is refused;
* a cooldown (``mqtt.command_cooldown_s``) per action after each accepted command;
* payload size and JSON nesting are bounded before anything parses them (see actions);
* an empty payload (how a retained message is cleared) is ignored, never a press.

Every refusal is answered on ``command/result`` and as a ``refused`` Command result event.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge.context import ServiceContext
from edge.mqtt.actions import known_action, run_command
from edge.mqtt.payloads import now_iso
from edge.mqtt.states import RetainedStates
from edge.mqtt.topics import Topics, topic_level

log = logging.getLogger(__name__)
Publish = Callable[..., Any]

class CommandGate:
    """Single flight and cooldown per action. ``running(action)`` says whether the work an
    earlier command started is still going (a backup job)."""

    def __init__(self, cooldown_s: float, running: Callable[[str], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = float(cooldown_s)
        self._running = running
        self._clock = clock
        self._last: dict[str, float] = {}

    def refusal(self, action: str, retained: bool) -> str | None:
        """Why this command may not run now, or None when it may."""
        if retained:
            return ("retained command ignored: a command must not be retained (it would run again "
                    "after every restart); clear it with an empty retained message")
        if self._running(action):
            return f"{action} already running: one at a time"
        now = self._clock()
        last = self._last.get(action)
        if last is not None and now - last < self.cooldown_s:
            return f"{action} refused: cooldown, try again in {self.cooldown_s - (now - last):.0f} s"
        return None

    def ran(self, action: str) -> None:
        """A command of ``action`` ran: its cooldown starts (a refused or malformed one does not)."""
        self._last[action] = self._clock()


class CommandDesk:
    """Runs what arrives on the command topics and the cameras' Recognition switches, and
    answers: ``command/result`` for every command, a Command result event (ok, failed,
    refused) for every outcome, including a backup job's end. Worker thread only."""

    def __init__(self, ctx: ServiceContext, topics: Topics, publish: Publish, states: RetainedStates) -> None:
        self.ctx = ctx
        self.topics = topics
        self._publish = publish
        self.states = states
        self.gate = CommandGate(float(ctx.settings.get("mqtt.command_cooldown_s", 10)), self._running)
        self._jobs: dict[str, str] = {}  # action -> job id of the work its last command started

    def _running(self, action: str) -> bool:
        job = self._jobs.get(action)
        backups = self.ctx.backups
        if job is None or backups is None or not hasattr(backups, "job"):
            return False
        try:
            return bool(backups.job(job).get("state") == "running")
        except Exception:
            return False

    def command(self, action: str, payload: bytes, retained: bool = False) -> None:
        if not payload:  # how a retained message is cleared: never a press, nothing to answer
            log.info("MQTT command %s: empty payload ignored", action)
            return
        refusal = self.gate.refusal(action, retained)
        if refusal is not None:
            log.warning("MQTT command %s refused: %s", action, refusal)
            result: dict[str, Any] = {"action": known_action(action), "ok": False, "refused": True,
                                      "error": refusal}
        else:
            result = run_command(self.ctx, action, payload)
            if result["ok"]:
                self.gate.ran(action)
                log.info("MQTT command %s: ok", action)
                job = (result.get("result") or {}).get("job")
                if job:
                    self._jobs[action] = str(job)
            else:
                log.warning("MQTT command %s failed: %s", action, result["error"])
        self._publish(self.topics.command_result, result, qos=1)
        if not result["ok"] or not (result.get("result") or {}).get("job"):
            outcome = "ok" if result["ok"] else "refused" if result.get("refused") else "failed"
            self._event(result["action"], outcome, result.get("error"))

    def _event(self, action: str | None, outcome: str, error: str | None = None, **extra: Any) -> None:
        self._publish(self.topics.command_event, {"event_type": outcome, "action": action, "error": error,
                                                  "at": now_iso(), **extra}, qos=1)

    def job_changed(self, job: dict[str, Any]) -> None:
        """A backup job a command started has finished: its outcome as a command result."""
        state = job.get("state")
        job_id = job.get("job") or job.get("id")  # the bus "backup" message names it "job"
        if state not in ("ok", "failed") or job_id not in self._jobs.values():
            return
        action = next(a for a, j in self._jobs.items() if j == job_id)
        del self._jobs[action]
        error = None if state == "ok" else str(job.get("message") or "failed")
        self._publish(self.topics.command_result, {"action": action, "ok": state == "ok", "job": job_id,
                                                   "finished": True, **({"error": error} if error else {})}, qos=1)
        self._event(action, str(state), error, job=job_id)

    def switch(self, level: str, payload: bytes, retained: bool) -> None:
        """The Recognition switch of the camera whose topic level is ``level``."""
        text = payload.strip().upper()
        if retained or text not in (b"ON", b"OFF"):
            log.warning("MQTT recognition switch for camera %s: %s ignored", level,
                        "a retained command" if retained else "a payload other than ON/OFF")
            return
        pipeline = self.ctx.pipeline
        cameras = self.states.last_state.get("cameras", {})
        name = next((str(c["name"]) for c in cameras.values() if topic_level(c["name"]) == level), None)
        if pipeline is None or name is None:
            log.warning("MQTT recognition switch: no camera %s here", level)
            return
        try:
            running = pipeline.set_recognition(name, text == b"ON")
        except Exception as exc:
            log.warning("MQTT recognition switch for camera %s failed: %s", name, exc)
            return
        self.states.cameras.set_recognition(name, running)
