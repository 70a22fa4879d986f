// Vellum's dashboard: keeps the shown status and progress live, and sends the buttons'
// requests. Every value from the server is set as text, never parsed as HTML.
"use strict";

function setStages(holder, progress) {
  for (const p of progress) {
    const cell = holder.querySelector('[data-stage="' + p.stage + '"]');
    if (!cell) continue;
    cell.className = "stage stage-" + String(p.status).toLowerCase();
    const batches = p.batches_done != null && p.batches != null ? ", " + p.batches_done + " of " + p.batches + " batches" : "";
    cell.title = p.microservice + ": " + p.status + batches;
  }
}

function setStatus(el, status) {
  if (!el) return;
  el.textContent = status;
  el.className = "status status-" + String(status).toLowerCase();
}

async function refreshList(table) {
  const rows = table.querySelectorAll("tr[data-id]");
  for (const row of rows) {
    const status = row.querySelector('[data-field="status"]');
    if (status && status.textContent !== "PROCESSING") continue;
    const answer = await fetch("/api/transfers/" + row.dataset.id, { credentials: "same-origin" });
    if (!answer.ok) continue;
    const detail = await answer.json();
    setStatus(status, detail.summary.status);
    const micro = row.querySelector('[data-field="microservice"]');
    if (micro) micro.textContent = detail.summary.microservice || "";
    setStages(row, detail.progress);
    if (detail.summary.status !== "PROCESSING") location.reload();
  }
}

async function refreshTransfer(holder) {
  const answer = await fetch("/api/transfers/" + holder.dataset.id, { credentials: "same-origin" });
  if (!answer.ok) return;
  const detail = await answer.json();
  setStages(document, detail.progress);
  if (detail.summary.status !== "PROCESSING") location.reload();
}

function live() {
  const list = document.querySelector('[data-live="list"]');
  const transfer = document.querySelector('[data-live="transfer"]');
  const processing = document.querySelector(".status-processing");
  if (!processing) return;
  setInterval(() => {
    if (list) refreshList(list);
    if (transfer) refreshTransfer(transfer);
  }, 3000);
}

function actions() {
  for (const button of document.querySelectorAll("button[data-post]")) {
    button.addEventListener("click", async () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      button.disabled = true;
      const answer = await fetch(button.dataset.post, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      if (!answer.ok) {
        const said = await answer.json().catch(() => ({}));
        window.alert(said.message || "The request failed (" + answer.status + ").");
        button.disabled = false;
        return;
      }
      location.reload();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { live(); actions(); });
