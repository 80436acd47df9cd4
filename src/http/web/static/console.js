// The console's only script. Every page works without it; it adds live
// progress of tasks and imports, and the template editor's live preview.
"use strict";
(function () {
  var base = function () { return document.body.getAttribute("data-base") || "/sendstat"; };

  function poll() {
    var bars = document.querySelectorAll("progress[data-task], tr[data-import], [data-task-status]");
    if (!bars.length) return;
    fetch(base() + "/progress.json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) return;
        var busy = false;
        (p.tasks || []).forEach(function (t) {
          var bar = document.querySelector('progress[data-task="' + t.id + '"]');
          var text = document.querySelector('[data-task-text="' + t.id + '"]');
          var status = document.querySelector('[data-task-status="' + t.id + '"]');
          var sent = document.querySelector('[data-task-sent="' + t.id + '"]');
          var failed = document.querySelector('[data-task-failed="' + t.id + '"]');
          if (bar) { bar.max = t.recipients; bar.value = t.done; }
          if (text) text.textContent = t.done + " / " + t.recipients;
          if (status && t.status_text) { status.textContent = t.status_text; status.setAttribute("data-status", t.status); }
          if (sent) sent.textContent = t.sent;
          if (failed) failed.textContent = t.failed;
          if (status ? t.status !== 3 : t.done < t.recipients) busy = true;
        });
        (p.imports || []).forEach(function (j) {
          var row = document.querySelector('tr[data-import="' + j.id + '"]');
          if (!row) return;
          var bar = row.querySelector("progress");
          bar.max = j.size || 1; bar.value = j.state === "done" ? bar.max : j.offset_done;
          var state = row.querySelector(".state");
          var label = document.getElementById("imports").getAttribute("data-label-" + j.state);
          state.textContent = label || j.state;
          state.setAttribute("data-state", j.state);
          row.querySelector(".added").textContent = j.added;
          row.querySelector(".invalid").textContent = j.invalid;
          row.querySelector(".duplicate").textContent = j.duplicate;
          if (j.state !== "done" && j.state !== "failed") busy = true;
        });
        if (busy) setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }

  // The template editor: the preview follows what is typed.
  function livePreview() {
    var form = document.getElementById("editor");
    var frame = document.getElementById("preview");
    if (!form || !frame) return;
    var timer = null;
    function render() {
      var body = new URLSearchParams();
      ["csrf", "name", "subject", "html", "text"].forEach(function (n) {
        var field = form.elements.namedItem(n);
        if (field) body.append(n, field.value);
      });
      fetch(form.getAttribute("data-preview"), {
        method: "POST", credentials: "same-origin", body: body,
        headers: { "Content-Type": "application/x-www-form-urlencoded" }
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) return;
          var error = document.getElementById("preview-error");
          if (p.error) {
            error.textContent = p.error; error.hidden = false;
            return;
          }
          error.hidden = true;
          document.getElementById("preview-subject").textContent = p.subject;
          document.getElementById("preview-text").textContent = p.text || "";
          frame.srcdoc = p.html;
          form.setAttribute("data-previewed", String(Date.now()));
        })
        .catch(function () {});
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, 300);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { poll(); livePreview(); });
})();
