"""In-process publish/subscribe between the service's parts.

Topics used across the service (payloads are plain dicts):

* ``event``         a stored event row (pipeline -> MQTT, web)
* ``camera``        a camera state change: name, online, reconnects, last_frame_at
* ``alert``         an alert transition: name, subject, state raised/cleared, value, at
* ``backup``        a backup/restore progress or result record
* ``enroll``        enrolment changed (gallery reload)

A subscriber that raises is logged and never breaks the publisher.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Register ``handler`` for ``topic``; returns a function that unsubscribes it."""
        with self._lock:
            self._handlers[topic].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers[topic]:
                    self._handlers[topic].remove(handler)

        return unsubscribe

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(payload)
            except Exception:
                log.exception("bus subscriber %r for topic %r failed", handler, topic)
