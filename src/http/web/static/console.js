// The console's only script: live progress of running tasks and imports.
"use strict";
(function () {
  function poll() {
    var bars = document.querySelectorAll("progress[data-task], tr[data-import]");
    if (!bars.length) return;
    fetch("/sendstat/progress.json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) return;
        var busy = false;
        (p.tasks || []).forEach(function (t) {
          var bar = document.querySelector('progress[data-task="' + t.id + '"]');
          var text = document.querySelector('[data-task-text="' + t.id + '"]');
          if (bar) { bar.max = t.recipients; bar.value = t.done; }
          if (text) text.textContent = t.done + " / " + t.recipients;
          if (t.done < t.recipients) busy = true;
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
  document.addEventListener("DOMContentLoaded", poll);
})();
