// FacePro Edge status page: live figures, chart refresh, backup job progress. No dependencies.
(function () {
  "use strict";

  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }

  function duration(s) {
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h " + m + "m";
    if (h) return h + "h " + m + "m";
    return m + "m " + (s % 60) + "s";
  }

  function bytes(n) {
    var units = ["B", "KB", "MB", "GB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i ? n.toFixed(1) + " " + units[i] : Math.round(n) + " B";
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function motionText(c) {
    if (!c.motion_gating) return "not gated";
    var text = c.motion ? "motion" : "still";
    if (c.motion_fraction != null) text += " (" + (100 * c.motion_fraction).toFixed(1) + " %)";
    return text;
  }

  function updateCameras(section) {
    var body = document.getElementById("cameras");
    if (!body || !section || !section.available) return;
    body.textContent = "";
    section.data.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-camera", c.name);
      tr.appendChild(cell(c.name));
      var state = cell(c.online ? "online" : "offline", c.online ? "ok" : "bad");
      if (!c.online && c.error) state.title = c.error;  // the named cause: 401, refused, stalled ...
      tr.appendChild(state);
      var fps = cell((c.fps_processed || 0).toFixed(1), "fps");
      fps.setAttribute("data-col", "fps_processed");
      tr.appendChild(fps);
      tr.appendChild(cell((c.fps_capture || 0).toFixed(1)));
      tr.appendChild(cell((c.fps_decoded || 0).toFixed(1)));
      tr.appendChild(cell(motionText(c), c.motion ? "bad" : ""));
      tr.appendChild(cell(c.detect_share == null ? "—" : Math.round(100 * c.detect_share) + " %"));
      tr.appendChild(cell(String(c.frames_dropped)));
      tr.appendChild(cell(String(c.reconnects)));
      tr.appendChild(cell(c.last_frame_at || "—"));
      body.appendChild(tr);
    });
  }

  function updateAlerts(section) {
    var list = document.getElementById("alerts");
    if (!list || !section || !section.available) return;
    list.textContent = "";
    if (!section.data.length) {
      var none = document.createElement("li");
      none.className = "ok";
      none.textContent = "No active alerts.";
      list.appendChild(none);
    }
    section.data.forEach(function (a) {
      var li = document.createElement("li");
      li.className = "bad";
      li.textContent = a.name + (a.subject ? " (" + a.subject + ")" : "") + ": " + a.message + " — since " + a.since;
      list.appendChild(li);
    });
  }

  function updateFields(status) {
    document.querySelectorAll("[data-field]").forEach(function (el) {
      var value = get(status, el.getAttribute("data-field"));
      if (value === undefined) return;
      var format = el.getAttribute("data-format");
      if (value === null) value = "—";
      else if (format === "duration") value = duration(value);
      else if (format === "percent") value = Math.round(value) + " %";
      else if (format === "celsius") value = Math.round(value) + " °C";
      else if (format === "bytes") value = bytes(value);
      else if (format === "connected") value = value ? "connected" : "disconnected";
      else if (Array.isArray(value)) value = value.join(el.getAttribute("data-join") || ", ");
      el.textContent = String(value);
    });
    var health = document.getElementById("health");
    if (health) health.className = "health " + (status.health.status === "ok" ? "ok" : "bad");
  }

  function refreshStatus() {
    if (document.hidden) return;  // a forgotten background tab costs the device nothing
    fetch("/api/status", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (status) {
        updateFields(status);
        updateCameras(status.cameras);
        updateAlerts(status.alerts);
        document.body.setAttribute("data-live", "ok");
      })
      .catch(function () { document.body.setAttribute("data-live", "failed"); });
  }

  function refreshCharts() {
    var box = document.getElementById("charts");
    if (!box || document.hidden) return;
    fetch("/partials/charts", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () {});
  }

  function pollJob(box) {
    var bar = document.getElementById("job-progress"), msg = document.getElementById("job-message");
    fetch(box.getAttribute("data-poll"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, job: j}; }); })
      .then(function (res) {
        var job = res.job, what = box.getAttribute("data-kind") === "restore" ? "Restore" : "Backup";
        if (!res.ok) { msg.textContent = job.error || "job unknown"; box.setAttribute("data-state", "failed"); return; }
        bar.value = job.progress || 0;
        msg.textContent = (job.message || job.state) + " (" + Math.round((job.progress || 0) * 100) + "%)";
        box.setAttribute("data-state", job.state);
        if (job.state === "running") { setTimeout(function () { pollJob(box); }, 700); return; }
        if (job.state === "ok") {
          bar.value = 1;
          var name = job.archive || (job.result && (job.result.name || job.result.archive));
          msg.textContent = what + " finished" + (name ? ": " + name : "") + ".";
          // Reload the list (a new archive shows, or the restored data), without the job box.
          setTimeout(function () { window.location.replace("/backups?done=" + encodeURIComponent(box.getAttribute("data-job"))); }, 600);
        } else {
          msg.textContent = what + " failed: " + (job.message || "unknown error");
        }
      })
      .catch(function () { setTimeout(function () { pollJob(box); }, 1500); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.getAttribute("data-page");
    if (page === "dashboard") {
      refreshStatus();
      setInterval(refreshStatus, 3000);
      setInterval(refreshCharts, 10000);
    }
    var job = document.getElementById("job");
    if (job) pollJob(job);
    // Forms that can start a job: with JavaScript the page follows the job's progress.
    document.querySelectorAll('input[type="hidden"][name="poll"]').forEach(function (el) { el.value = "1"; });
    document.querySelectorAll("form.confirm").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  });
})();
