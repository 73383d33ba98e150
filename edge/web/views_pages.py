"""The server-rendered pages: dashboard, events, people, backups."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from edge.context import ServiceContext
from edge.db import web_queries
from edge.secrets import masked
from edge.web import backups as backup_actions
from edge.web import people as people_actions
from edge.web import status as status_mod
from edge.web.charts import svg_chart
from edge.web.errors import ActionError
from edge.web.views_api import event_query_args, snapshot_url, status_cache
from edge.web.views_files import relative_face_path

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)


def ctx() -> ServiceContext:
    return current_app.config["FACEPRO_CTX"]


def fail(exc: ActionError, endpoint: str, **values: Any) -> Any:
    flash(str(exc), "error")
    return redirect(url_for(endpoint, **values)), 303


@bp.get("/")
def dashboard() -> Any:
    status = status_mod.cached_status(ctx(), status_cache())
    charts = status_mod.cached_charts(ctx(), status_cache())
    return render_template("dashboard.html", s=status, charts=charts, svg_chart=svg_chart)


@bp.get("/partials/charts")
def charts_partial() -> Any:
    """The charts alone, for the dashboard's script to swap in every few seconds."""
    return render_template("_charts.html", charts=status_mod.cached_charts(ctx(), status_cache()), svg_chart=svg_chart)


@bp.get("/events")
def events() -> Any:
    error = None
    rows: list[dict[str, Any]] = []
    choices: dict[str, list[str]] = {"cameras": [], "people": [], "types": []}
    try:
        args = event_query_args()
    except ValueError as exc:
        args, error = {}, str(exc)
    try:
        rows = web_queries.list_events(ctx().db_path, **args)
        choices = web_queries.event_filter_choices(ctx().db_path)
    except Exception as exc:
        error = f"events are not available: {masked(str(exc))}"
    for row in rows:
        row["snapshot"] = snapshot_url(row.pop("snapshot_path"))
    return render_template("events.html", events=rows, choices=choices, error=error,
                           current={k: request.args.get(k, "") for k in ("camera", "person", "type")})


@bp.get("/people")
def people() -> Any:
    error = None
    rows: list[dict[str, Any]] = []
    try:
        rows = web_queries.list_people(ctx().db_path)
    except Exception as exc:
        error = f"people are not available: {masked(str(exc))}"
    for row in rows:
        relative = [relative_face_path(ctx(), p) for p in row["images"]]
        row["image_urls"] = [url_for("files.face", path=p) for p in relative if p]
    return render_template("people.html", people=rows, error=error,
                           max_upload_mb=ctx().settings["web.max_upload_mb"])


@bp.post("/people/enroll")
def people_enroll() -> Any:
    photos = [(f.filename or "", f.read()) for f in request.files.getlist("photos") if f and f.filename]
    try:
        result = people_actions.enroll(ctx(), request.form.get("name"), photos)
    except ActionError as exc:
        return fail(exc, "pages.people")
    added = result.get("added", result.get("embeddings")) if isinstance(result, dict) else None
    flash(f"Enrolled {request.form.get('name', '').strip()}" + (f" ({added} face(s))" if added is not None else "") + ".")
    return redirect(url_for("pages.people"), 303)


@bp.post("/people/<int:user_id>/remove")
def people_remove(user_id: int) -> Any:
    try:
        person = web_queries.get_person(ctx().db_path, user_id)
        if person is None:
            raise ActionError(f"no enrolled person with id {user_id}", 404)
        people_actions.remove(ctx(), person["name"])
    except ActionError as exc:
        return fail(exc, "pages.people")
    flash(f"Removed {person['name']}.")
    return redirect(url_for("pages.people"), 303)


@bp.get("/backups")
def backups() -> Any:
    data: dict[str, Any] | None = None
    error = None
    finished = None
    job_kind = "create"
    try:
        data = backup_actions.overview(ctx())
        if request.args.get("done"):
            finished = backup_actions.job_state(ctx(), request.args["done"])
            if finished.get("kind") == "restore" and finished["state"] == "ok":
                finished["restored_message"] = backup_actions.restored_message(finished)
        if request.args.get("job"):
            job_kind = backup_actions.job_state(ctx(), request.args["job"]).get("kind", "create")
    except ActionError as exc:
        error = str(exc) if data is None else None
    return render_template("backups.html", data=data, error=error, job=request.args.get("job", ""),
                           finished=finished, job_kind=job_kind,
                           include_labels=backup_actions.INCLUDE_LABELS,
                           default_include=ctx().settings["backup.include"],
                           max_upload_mb=ctx().settings["web.max_upload_mb"])


@bp.post("/backups/create")
def backups_create() -> Any:
    try:
        job_id = backup_actions.start_backup(ctx(), request.form.get("target") or None,
                                             request.form.getlist("include") or [])
    except ActionError as exc:
        return fail(exc, "pages.backups")
    return redirect(url_for("pages.backups", job=job_id), 303)


def _selected() -> tuple[str, str]:
    """The backup chosen in the list: 'target/name' in the 'backup' field (or separate fields)."""
    selected = request.values.get("backup", "")
    if selected and "/" in selected:
        target, name = selected.split("/", 1)
        return target, name
    target, name = request.values.get("target", ""), request.values.get("name", "")
    if not target or not name:
        raise ActionError("select a backup in the list first")
    return target, name


@bp.route("/backups/confirm", methods=["GET", "POST"])
def backups_confirm() -> Any:
    """Step 2 of restore / delete: say exactly what will happen and ask again."""
    action = request.values.get("action", "")
    if action not in ("restore", "delete"):
        return fail(ActionError("action: choose restore or delete"), "pages.backups")
    try:
        target, name = _selected()
        backup = backup_actions.find_backup(ctx(), target, name)
    except ActionError as exc:
        return fail(exc, "pages.backups")
    overwrites = backup_actions.what_restore_overwrites(ctx(), backup, None) if action == "restore" else []
    security: dict[str, Any] = {"security_changes": [], "secrets_cleared": [], "digest": ""}
    if action == "restore":
        try:
            security = backup_actions.security_preview(ctx(), backup)
        except ActionError as exc:
            return fail(exc, "pages.backups")
    return render_template("backup_confirm.html", action=action, backup=backup, target=target,
                           overwrites=overwrites, include_labels=backup_actions.INCLUDE_LABELS, security=security)


@bp.post("/backups/restore")
def backups_restore() -> Any:
    if request.form.get("confirm") != "yes":
        return fail(ActionError("restore not confirmed"), "pages.backups")
    try:
        target, name = _selected()
        job_id = backup_actions.start_restore(ctx(), target, name, request.form.getlist("include") or None,
                                              request.form.get("accept_security"))
        if request.form.get("poll") == "1":  # set by app.js: the page shows the job's progress
            return redirect(url_for("pages.backups", job=job_id), 303)
        job = backup_actions.wait_restore(ctx(), job_id)
    except ActionError as exc:
        return fail(exc, "pages.backups")
    if job["state"] == "running":
        return redirect(url_for("pages.backups", job=job_id), 303)
    flash(backup_actions.restored_message(job))
    return redirect(url_for("pages.backups"), 303)


@bp.post("/backups/delete")
def backups_delete() -> Any:
    if request.form.get("confirm") != "yes":
        return fail(ActionError("delete not confirmed"), "pages.backups")
    try:
        target, name = _selected()
        backup_actions.delete(ctx(), target, name)
    except ActionError as exc:
        return fail(exc, "pages.backups")
    flash(f"Deleted {name} from {target}.")
    return redirect(url_for("pages.backups"), 303)


@bp.post("/backups/import")
def backups_import() -> Any:
    upload = request.files.get("archive")
    if upload is None or not upload.filename:
        return fail(ActionError("archive: choose a backup file to import"), "pages.backups")
    try:
        result = backup_actions.import_upload(ctx(), upload.filename, upload.stream)
    except ActionError as exc:
        return fail(exc, "pages.backups")
    flash(f"Imported and verified {result.get('name', upload.filename)}.")
    return redirect(url_for("pages.backups"), 303)
