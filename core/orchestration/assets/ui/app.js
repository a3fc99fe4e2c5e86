// Tasker dashboard: keeps server-rendered pages live and runs the operator actions.
// Live: the page listens to the lifecycle event stream (/v1/events/stream); on an event that
// concerns it, it fetches its live part again (`?partial=1`) and swaps it in, so every state is
// rendered by the server. Actions: POST to the JSON API with an `application/json` body (which a
// cross-site form cannot send), after a confirmation dialog.
'use strict';

(function () {
  const EVENTS = ['task.created', 'step.started', 'step.completed', 'step.retry_scheduled',
    'step.failed', 'task.completed', 'task.failed'];

  function toast(text) {
    const t = document.getElementById('toast');
    t.textContent = text;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.textContent = ''; }, 6000);
  }

  // Resolves true when the operator confirms, false otherwise (Keep, Escape).
  function confirmAction(text, okLabel) {
    const dialog = document.getElementById('confirm');
    document.getElementById('confirm-text').textContent = text;
    document.getElementById('confirm-ok').textContent = okLabel;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.returnValue = '';
      dialog.showModal();
      document.getElementById('confirm-keep').focus();
    });
  }

  async function post(path) {
    const res = await fetch(path, {
      method: 'POST',
      // The dashboard's own header: the server refuses a cookie-authenticated action without
      // it, which a page of another site cannot send.
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-tasker-csrf': '1' },
      body: '{}',
      credentials: 'same-origin',
    });
    let body = null;
    try { body = await res.json(); } catch (_) { /* no body */ }
    return { status: res.status, body };
  }

  function failure(r) {
    const e = r.body && r.body.error;
    return e ? `${r.status} ${e.code}: ${e.message}` : `HTTP ${r.status}`;
  }

  // Runs fn at most once per `ms`, after the last call; `.now()` runs it at once.
  function debounce(fn, ms) {
    let timer = null;
    let running = null;
    const run = async () => {
      timer = null;
      if (running) { await running; }
      running = fn().catch((e) => console.error(e)).finally(() => { running = null; });
      return running;
    };
    const d = () => { if (!timer) { timer = setTimeout(run, ms); } };
    d.now = () => { clearTimeout(timer); return run(); };
    return d;
  }

  function subscribe(namespace, onEvent, onOpen) {
    const state = document.getElementById('live-state');
    const url = '/v1/events/stream' + (namespace ? '?namespace=' + encodeURIComponent(namespace) : '');
    const source = new EventSource(url);
    source.addEventListener('open', () => { state.textContent = 'live'; onOpen(); });
    source.addEventListener('error', () => { state.textContent = 'reconnecting…'; });
    for (const name of EVENTS) {
      source.addEventListener(name, (m) => {
        let event = null;
        try { event = JSON.parse(m.data); } catch (_) { return; }
        onEvent(event);
      });
    }
    window.addEventListener('pagehide', () => source.close());
    return source;
  }

  function partialUrl(extra) {
    const url = new URL(location.href);
    for (const [k, v] of Object.entries(extra || {})) {
      if (v === null) { url.searchParams.delete(k); } else { url.searchParams.set(k, v); }
    }
    url.searchParams.set('partial', '1');
    return url;
  }

  function tasksPage() {
    const results = document.getElementById('results');
    const cancelButton = document.getElementById('cancel-selected');
    const selectionCount = document.getElementById('selection-count');
    const selected = new Set();

    function showSelection() {
      cancelButton.disabled = selected.size === 0;
      selectionCount.textContent = selected.size === 0
        ? 'Select running tasks to cancel them together.'
        : `${selected.size} selected`;
    }

    function boxes() { return [...results.querySelectorAll('input.select')]; }

    // Keeps only selections still shown and still cancellable.
    function restoreSelection() {
      const shown = new Set();
      for (const box of boxes()) {
        shown.add(box.value);
        box.checked = selected.has(box.value);
      }
      for (const uuid of [...selected]) { if (!shown.has(uuid)) { selected.delete(uuid); } }
      showSelection();
    }

    results.addEventListener('change', (ev) => {
      const box = ev.target;
      if (box.id === 'select-all') {
        for (const b of boxes()) {
          b.checked = box.checked;
          if (box.checked) { selected.add(b.value); } else { selected.delete(b.value); }
        }
      } else if (box.classList.contains('select')) {
        if (box.checked) { selected.add(box.value); } else { selected.delete(box.value); }
      }
      showSelection();
    });

    const refresh = debounce(async () => {
      const before = new Map([...results.querySelectorAll('tr[data-task]')]
        .map((r) => [r.dataset.task, r.dataset.status]));
      const res = await fetch(partialUrl());
      if (!res.ok) { return; }
      results.innerHTML = await res.text();
      for (const row of results.querySelectorAll('tr[data-task]')) {
        const old = before.get(row.dataset.task);
        if (old === undefined) { row.classList.add('new'); } else if (old !== row.dataset.status) { row.classList.add('changed'); }
      }
      restoreSelection();
      results.dataset.refreshes = String(Number(results.dataset.refreshes) + 1);
    }, 400);

    cancelButton.addEventListener('click', async () => {
      const uuids = [...selected];
      if (uuids.length === 0) { return; }
      const ok = await confirmAction(
        `Cancel ${uuids.length} task(s)? Steps not yet running are cancelled at once; running ones finish and are recorded as cancelled.`,
        `Cancel ${uuids.length} task(s)`);
      if (!ok) { return; }
      cancelButton.disabled = true;
      const outcomes = await Promise.all(uuids.map((u) => post(`/v1/tasks/${u}/cancel`)));
      const done = outcomes.filter((r) => r.status === 200).length;
      const ended = outcomes.filter((r) => r.status === 409).length;
      const failed = outcomes.filter((r) => r.status !== 200 && r.status !== 409);
      let text = `Cancelled ${done} task(s).`;
      if (ended) { text += ` ${ended} had already ended.`; }
      if (failed.length) { text += ` ${failed.length} failed: ${failure(failed[0])}`; }
      toast(text);
      selected.clear();
      await refresh.now();
    });

    showSelection();
    subscribe(results.dataset.namespace, () => refresh(), () => refresh());
  }

  function taskPage() {
    const live = document.getElementById('live');
    const uuid = live.dataset.task;
    // The step shown: the one asked for, else the one the server chose (the first in error).
    const chosen = live.querySelector('a.node.selected');
    let step = new URL(location.href).searchParams.get('step') || (chosen ? chosen.dataset.step : null);

    const refresh = debounce(async () => {
      const res = await fetch(partialUrl({ step }));
      if (!res.ok) { return; }
      const focused = document.activeElement && document.activeElement.id;
      live.innerHTML = await res.text();
      if (focused) { const again = document.getElementById(focused); if (again) { again.focus(); } }
      live.dataset.refreshes = String(Number(live.dataset.refreshes) + 1);
    }, 150);

    live.addEventListener('click', async (ev) => {
      const node = ev.target.closest('a.node');
      if (node) {
        ev.preventDefault();
        step = node.dataset.step;
        history.replaceState(null, '', node.getAttribute('href'));
        await refresh.now();
        const title = document.getElementById('step-title');
        if (title) { title.scrollIntoView({ block: 'nearest' }); }
        return;
      }
      if (ev.target.closest('#cancel-task')) {
        const ok = await confirmAction(
          'Cancel this task? Steps not yet running are cancelled at once; running ones finish and are recorded as cancelled.',
          'Cancel task');
        if (!ok) { return; }
        const r = await post(`/v1/tasks/${uuid}/cancel`);
        toast(r.status === 200 ? 'Task cancelled.' : `Not cancelled: ${failure(r)}`);
        await refresh.now();
        return;
      }
      const retry = ev.target.closest('#retry-step');
      if (retry) {
        const name = retry.dataset.step;
        const ok = await confirmAction(
          `Retry step ${name}? It gets a fresh set of attempts and the task resumes when no other step is in error.`,
          'Retry step');
        if (!ok) { return; }
        const r = await post(`/v1/tasks/${uuid}/steps/${encodeURIComponent(name)}/retry`);
        toast(r.status === 200 ? `Step ${name} queued again.` : `Not retried: ${failure(r)}`);
        await refresh.now();
      }
    });

    subscribe(live.dataset.namespace, (e) => { if (e.task_uuid === uuid) { refresh(); } }, () => refresh());
  }

  document.addEventListener('DOMContentLoaded', () => {
    const page = document.body.dataset.page;
    if (page === 'tasks') { tasksPage(); }
    if (page === 'task') { taskPage(); }
  });
}());
