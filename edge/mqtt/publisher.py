"""The MQTT part of the service: availability, the event outbox, states, telemetry, commands.

Threads: paho's network thread (``loop_start``) runs the callbacks, which only set flags and
queue work; one worker thread does everything else (database, publishing, commands), so a
slow broker or database never blocks paho and paho's locks are never held while we take
ours. Nothing here blocks the service's boot: the connection is made asynchronously and
retried with a 1 s .. 120 s backoff.

The outbox: unpublished events rows are read in id order, a window of ``mqtt.max_inflight``
at a time, published at QoS 1 and marked published only when the PUBACK for that message
id arrives. Messages in flight at a disconnect stay in paho's queue and are re-sent on
reconnect; after a restart the unpublished rows are read again from the lowest id. A
consumer that dedupes by ``id`` therefore sees every event exactly once.

A full disk: see :mod:`edge.mqtt.fullsafe` (events from memory, outbox writes retried).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from edge import secrets
from edge.context import ServiceContext
from edge.db.outbox import EventOutbox
from edge.mqtt import client as paho
from edge.mqtt.client import broker_label, client_id_for, is_failure, make_client, reason_text, topics_for
from edge.mqtt.commands import CommandDesk
from edge.mqtt.fullsafe import OutboxWrites, unstored_message
from edge.mqtt.inbound import Debounce, classify
from edge.mqtt.payloads import delivery_fields, event_message, is_late, now_iso, recognition_message
from edge.mqtt.states import RetainedStates

log = logging.getLogger(__name__)

SCAN_INTERVAL_S = 5.0       # periodic outbox scan (bus "event" wakes it sooner) and bound check
STALE_INFLIGHT_S = 120.0    # an unacknowledged message this old while connected: re-read the outbox
STOP_FLUSH_S = 3.0          # on a clean stop, wait this long for the "offline" PUBACK


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    def run(*args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("MQTT callback %s failed", callback.__name__)

    run.__name__ = callback.__name__
    return run


class MqttPublisher:
    name = "mqtt"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.topics = topics_for(settings, ctx.device_id)
        self.broker = broker_label(settings)
        self.max_inflight = int(settings.get("mqtt.max_inflight", 20) or 20)
        self.telemetry_interval_s = float(settings["telemetry.interval_s"])
        self.client_id = client_id_for(ctx.device_id)
        self.client = make_client(settings, ctx.device_id, client_id=self.client_id)
        self.client.max_inflight_messages_set(self.max_inflight + 20)
        # An exception escaping a paho callback would end paho's network thread: log it instead.
        self.client.on_connect = _guarded(self._on_connect)
        self.client.on_disconnect = _guarded(self._on_disconnect)
        self.client.on_publish = _guarded(self._on_publish)
        self.client.on_message = _guarded(self._on_message)

        self._outbox = EventOutbox(ctx.db_path, settings["database.busy_timeout_ms"])
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._acks: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = []

        # Worker-thread state.
        # mid -> (row id, sent, event, snapshot path)
        self._inflight: dict[int, tuple[int, float, dict[str, Any], str | None]] = {}
        self._cursor = 0
        self.fresh_s = float(settings.get("mqtt.event_freshness_s", 30))
        self._republish_debounce = Debounce()
        self._writes = OutboxWrites(self._outbox)

        # Read by status() from other threads.
        self._status_lock = threading.Lock()
        self._last_connected_at: str | None = None
        self._last_error: str | None = None
        self._counts: dict[str, int | None] = {"unpublished": None, "skipped": None}
        self._published = 0
        self._skipped_now = 0
        self.states = RetainedStates(ctx, self.topics, self._publish, self._connected.is_set, self._outbox,
                                     self._outbox_numbers)
        self.desk = CommandDesk(ctx, self.topics, self._publish, self.states)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        bus = self.ctx.bus
        self._unsubscribe = [
            bus.subscribe("event", self._on_event),
            bus.subscribe("camera", lambda payload: self._queue(lambda: self.states.camera_changed(payload))),
            bus.subscribe("alert", lambda payload: self._queue(lambda: self.states.alert_changed(payload))),
            bus.subscribe("enroll", lambda _payload: self._queue(self._sync_people)),
            bus.subscribe("backup", lambda payload: self._queue(lambda: self.desk.job_changed(payload))),
            bus.subscribe("motion", lambda payload: self._queue(lambda: self.states.motion.changed(payload))),
        ]
        self._worker = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._worker.start()
        settings = self.ctx.settings
        self.client.connect_async(settings["mqtt.host"], settings["mqtt.port"], keepalive=settings["mqtt.keepalive_s"])
        self.client.loop_start()
        log.info("MQTT publisher started: broker %s, topics %s/#", self.broker, self.topics.root)

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._stopping.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=STOP_FLUSH_S + 10)
        try:
            self.client.disconnect()
        except Exception:
            log.debug("disconnect failed", exc_info=True)
        self.client.loop_stop()
        self._connected.clear()
        log.info("MQTT publisher stopped")

    def status(self) -> dict[str, Any]:
        with self._status_lock:
            return {
                "connected": self._connected.is_set(),
                "broker": self.broker,
                "client_id": self.client_id,
                "last_connected_at": self._last_connected_at,
                "last_error": self._last_error,
                "unpublished": self._counts["unpublished"],
                "skipped": self._counts["skipped"],
                "skipped_since_start": self._skipped_now,
                "published_since_start": self._published,
                "inflight": len(self._inflight),
            }

    # -- paho callbacks (network thread: flag and queue only) -------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                    _properties: Any) -> None:
        if is_failure(reason_code):
            with self._status_lock:
                self._last_error = f"connection refused: {reason_text(reason_code)}"
            log.warning("MQTT broker %s refused the connection: %s", self.broker, reason_text(reason_code))
            return
        with self._status_lock:
            self._last_connected_at = now_iso()
            self._last_error = None
        self._connected.set()
        self.ctx.metrics.set("mqtt_connected", 1)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        client.subscribe([(self.topics.command_filter, 1), (self.topics.ha_status, 1),
                          (self.topics.camera_recognition_filter, 1), (self.topics.person_filter, 1),
                          (self.topics.camera_recognition_state_filter, 1)])
        log.info("MQTT connected to %s", self.broker)
        self._queue(self._republish_all)

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                       _properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self.ctx.metrics.set("mqtt_connected", 0)
        if self._stopping.is_set():
            return
        with self._status_lock:
            self._last_error = f"disconnected: {reason_text(reason_code)}"
        if was_connected:
            log.warning("MQTT disconnected from %s (%s); reconnecting with backoff", self.broker,
                        reason_text(reason_code))

    def _on_publish(self, _client: paho.Client, _userdata: Any, mid: int, reason_code: Any,
                    _properties: Any) -> None:
        self._acks.put((mid, reason_code))
        self._wake.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        payload = bytes(message.payload or b"")
        retained = bool(message.retain)
        inbound = classify(self.topics, message.topic, payload, retained)
        if inbound.kind == "ha_online":
            self._queue(self._republish_debounce.request)
        elif inbound.kind == "person_state":
            self._queue(lambda: self.states.people.retained_state(payload))
        elif inbound.kind == "switch_state":
            configured = [str(c.get("name")) for c in self.ctx.settings.get("cameras", []) or []]
            self._queue(lambda: self.states.cameras.retained_switch(inbound.name, configured))
        elif inbound.kind == "switch_set":
            self._queue(lambda: self.desk.switch(inbound.name, payload, retained))
        elif inbound.kind == "command":
            self._queue(lambda: self.desk.command(inbound.name, payload, retained))

    def _on_event(self, payload: dict[str, Any]) -> None:
        if payload.get("stored") is False:  # the disk is full: from memory, now
            self._queue(lambda: self._publish_unstored(payload))
        else:
            self._wake.set()

    # -- worker ----------------------------------------------------------------------

    def _queue(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)
        self._wake.set()

    def _run(self) -> None:
        next_scan = 0.0
        next_telemetry = time.monotonic() + self.telemetry_interval_s
        while True:
            now = time.monotonic()
            due = min(next_scan, next_telemetry, self._republish_debounce.due_at or next_scan)
            self._wake.wait(max(0.0, due - now))
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self._run_tasks()
                self._process_acks()
                now = time.monotonic()
                if now >= next_scan:
                    self._scan()
                    next_scan = now + SCAN_INTERVAL_S
                if self._republish_debounce.take(now):
                    log.info("Home Assistant came online: re-publishing discovery and states")
                    self._republish_all()
                if self._connected.is_set():
                    self.states.tick()
                    self._fill_window()
                    if now >= next_telemetry:
                        self.states.publish_telemetry()
                if now >= next_telemetry:
                    next_telemetry = now + self.telemetry_interval_s
            except Exception as exc:
                log.exception("MQTT publisher step failed")
                with self._status_lock:
                    self._last_error = f"publisher error: {exc}"
                self._stopping.wait(1.0)
        self._finish()

    def _finish(self) -> None:
        """Clean stop: send what is still due (the pipeline stops first, so this includes its
        last events), announce offline, collect the last acknowledgements, close the database."""
        try:
            if self._connected.is_set():
                self._run_tasks()
                self._process_acks()
                self._fill_window()
                info = self.client.publish(self.topics.availability, "offline", qos=1, retain=True)
                try:
                    info.wait_for_publish(STOP_FLUSH_S)
                except (RuntimeError, ValueError):
                    pass
            self._process_acks()
        except Exception:
            log.exception("MQTT publisher: final flush failed")
        finally:
            self._outbox.close()

    def _run_tasks(self) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            try:
                task()
            except Exception:
                log.exception("MQTT task failed")

    def _publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> paho.MQTTMessageInfo:
        if isinstance(payload, bytes):  # an image: binary, nothing to redact
            return self.client.publish(topic, payload, qos=qos, retain=retain)
        if isinstance(payload, (dict, list)):
            text = json.dumps(payload, separators=(",", ":"), default=str)
        else:
            text = str(payload)
        return self.client.publish(topic, secrets.redact(text), qos=qos, retain=retain)

    # -- outbox ----------------------------------------------------------------------

    def _scan(self) -> None:
        settings = self.ctx.settings
        skipped = self._writes.apply_bounds(settings["mqtt.outbox_max_age_s"], settings["mqtt.outbox_max_count"])
        if skipped:
            log.warning("MQTT outbox bound: %d unpublished event(s) older than %g s or beyond the newest %d "
                        "left unpublished", skipped, settings["mqtt.outbox_max_age_s"],
                        settings["mqtt.outbox_max_count"])
        counts = self._outbox.counts()
        with self._status_lock:
            self._skipped_now += skipped
            self._counts = dict(counts)
        self.ctx.metrics.set("mqtt_outbox_unpublished", counts["unpublished"])
        self.ctx.metrics.set("mqtt_outbox_skipped", counts["skipped"])
        if self._connected.is_set():
            self._sync_people()
        if self._connected.is_set() and self._inflight:
            oldest = min(entry[1] for entry in self._inflight.values())
            if time.monotonic() - oldest > STALE_INFLIGHT_S:
                log.warning("MQTT: %d event(s) unacknowledged for %g s; re-reading the outbox",
                            len(self._inflight), STALE_INFLIGHT_S)
                self._inflight.clear()
                self._cursor = 0

    def _fill_window(self) -> None:
        space = self.max_inflight - len(self._inflight)
        if space <= 0:
            return
        rows = self._outbox.fetch_after(self._cursor, space)
        for row in rows:
            event = delivery_fields(event_message(row, self.ctx.data_dir), self.fresh_s)
            info = self._publish(self.topics.events, event, qos=1)
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                log.warning("MQTT: event %s not queued (%s); will retry", event["id"], paho.error_string(info.rc))
                return
            self._inflight[info.mid] = (int(row["id"]), time.monotonic(), event, row.get("snapshot_path"))
            self._cursor = int(row["id"])

    def _process_acks(self) -> None:
        done: list[tuple[int, dict[str, Any], str | None]] = []
        while True:
            try:
                mid, reason_code = self._acks.get_nowait()
            except queue.Empty:
                break
            entry = self._inflight.pop(mid, None)
            if entry is None:
                continue  # not an outbox message (availability, states, telemetry)
            if is_failure(reason_code):
                log.warning("MQTT broker rejected event %d: %s; it stays unpublished", entry[0],
                            reason_text(reason_code))
                continue
            done.append((entry[0], entry[2], entry[3]))
        self._writes.mark_published([row_id for row_id, _event, _path in done])
        if not done:
            return
        with self._status_lock:
            self._published += len(done)
            if self._counts["unpublished"] is not None:
                self._counts["unpublished"] = max(0, self._counts["unpublished"] - len(done))
        self.ctx.metrics.incr("mqtt_events_published", len(done))
        for _row_id, event, snapshot_path in done:
            self._fire(event)
            self.states.event_acked(event, snapshot_path)

    def _fire(self, event: dict[str, Any]) -> None:
        """The event entity and the device trigger, for a fresh event only: a late one (an
        outage, a restart) must not notify. Judged again now, at the PUBACK: paho re-sends a
        message caught in a silent link hang after the reconnect, so it left fresh but is late."""
        if is_late(event, self.fresh_s):
            log.debug("MQTT: event %s (captured %s) is late: not fired", event["id"], event.get("captured_at"))
            return
        self._publish(self.topics.recognition, recognition_message(event), qos=1)
        person = event.get("person")
        self._publish(self.topics.trigger("recognised", person) if person else self.topics.trigger("unknown"),
                      event, qos=1)

    def _publish_unstored(self, payload: dict[str, Any]) -> None:
        event = delivery_fields(unstored_message(payload), self.fresh_s)
        self._publish(self.topics.events, event, qos=1)
        self._fire(event)
        self.states.event_acked(event, None)
        with self._status_lock:
            self._published += 1

    # -- retained states (on the worker; the outbox's in-flight window is ours) ---------

    def _republish_all(self) -> None:
        """On every connect and when Home Assistant restarts: discovery and every retained state."""
        if not self._connected.is_set():
            return
        now = time.monotonic()
        self._inflight = {mid: (rid, now, event, path) for mid, (rid, _sent, event, path) in self._inflight.items()}
        self.states.republish_all()

    def _outbox_numbers(self) -> dict[str, int | None]:
        with self._status_lock:
            return {"unpublished": self._counts["unpublished"], "skipped": self._counts["skipped"],
                    "skipped_since_start": self._skipped_now, "published_since_start": self._published}

    # -- commands --------------------------------------------------------------------

    def _sync_people(self) -> None:
        if self._connected.is_set():
            self.states.sync_people()

