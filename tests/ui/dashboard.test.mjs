// The dashboard as an operator uses it, in Debian's Chromium driven by playwright-core.
// Started by tests/tests/dashboard.rs, which runs the server and a worker per language and
// writes the fixture (TASKER_UI_FIXTURE): the tasks this script looks for and acts on.
// Every page gets a screenshot in TASKER_UI_SCREENSHOTS and an axe-core check (no serious or
// critical violation of WCAG 2 A/AA).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { accessible, launchChromium } from './browser.mjs';

const BASE = process.env.TASKER_URL;
const FIXTURE = JSON.parse(readFileSync(process.env.TASKER_UI_FIXTURE, 'utf8'));
const SHOTS = process.env.TASKER_UI_SCREENSHOTS;
const WAIT = 30_000;

let browser;
let context;

before(async () => {
  browser = await launchChromium();
  // bypassCSP lets the test inject axe-core; the pages themselves allow only their own script.
  context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, bypassCSP: true });
  context.setDefaultTimeout(WAIT);
});

after(async () => {
  await browser?.close();
});

async function open(path) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') { errors.push(m.text()); } });
  page.errors = errors;
  const res = await page.goto(BASE + path);
  assert.equal(res.status(), 200, `${path}: ${res.status()}`);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}


// Creates a task through the API (as a client would) and returns its uuid.
async function createTask(body) {
  const res = await fetch(`${BASE}/v1/tasks`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).task_uuid;
}

// Whether the page has not been reloaded since `mark` was set.
async function markPage(page) { await page.evaluate(() => { window.__notReloaded = true; }); }
async function notReloaded(page) { return page.evaluate(() => window.__notReloaded === true); }

test('the tasks page lists the blog tasks of all four languages, with counts per status', async () => {
  const page = await open('/ui/tasks?limit=200');
  await page.waitForSelector('#live-state:text("live")');
  for (const lang of FIXTURE.languages) {
    for (const uuid of lang.blog) {
      await page.locator(`tr[data-task="${uuid}"]`).waitFor();
    }
    const rows = await page.locator('tr[data-task]').evaluateAll(
      (trs, suffix) => trs.filter((r) => r.cells[2].textContent.includes(`_${suffix}/`)).length, lang.suffix);
    assert.ok(rows >= lang.blog.length, `${lang.name}: ${rows} rows`);
  }
  const total = Number(await page.locator('.status-counts a.all b').textContent());
  assert.ok(total >= FIXTURE.languages.length * 8, `total ${total}`);
  await shot(page, 'tasks');
  await accessible(page, 'tasks page');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('"Failed only" shows only failed tasks', async () => {
  const page = await open('/ui/tasks?limit=200');
  await page.click('#failed-only');
  await page.waitForURL(/status=error/);
  const statuses = await page.locator('tr[data-task]').evaluateAll((rows) => rows.map((r) => r.dataset.status));
  assert.ok(statuses.length >= FIXTURE.languages.length, `failed rows: ${statuses.length}`);
  assert.ok(statuses.every((s) => s === 'error'), statuses.join(','));
  assert.equal(await page.locator('#failed-only').getAttribute('aria-current'), 'true');
  await shot(page, 'tasks-failed-only');
  await page.close();
});

test('search by correlation id finds exactly that task', async () => {
  const page = await open('/ui/tasks');
  await page.fill('#f-q', FIXTURE.search.correlation_id);
  await page.click('#filters button[type=submit]');
  await page.waitForURL(/q=order-2026-ui-search/);
  const rows = await page.locator('tr[data-task]').evaluateAll((r) => r.map((x) => x.dataset.task));
  assert.deepEqual(rows, [FIXTURE.search.task_uuid]);
  // A malformed filter is a 400 page naming the parameter.
  const bad = await context.newPage();
  const res = await bad.goto(`${BASE}/ui/tasks?status=failed`);
  assert.equal(res.status(), 400);
  assert.equal(await bad.locator('#error-field').textContent(), 'status');
  await bad.close();
  await page.close();
});

test('new tasks appear on the tasks page without reloading', async () => {
  const page = await open('/ui/tasks');
  await page.waitForSelector('#live-state:text("live")');
  await markPage(page);
  const created = await page.evaluate(async (body) => {
    const r = await fetch('/v1/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return r.json();
  }, FIXTURE.live_request);
  const row = page.locator(`tr[data-task="${created.task_uuid}"]`);
  await row.waitFor();
  await page.waitForFunction((uuid) => document.querySelector(`tr[data-task="${uuid}"]`)?.dataset.status === 'complete', created.task_uuid);
  assert.ok(await notReloaded(page), 'the page was reloaded');
  await page.close();
});

for (const [i, lang] of FIXTURE.languages.entries()) {
  test(`${lang.name}: a failed step is marked on the DAG, retried from the page, and turns complete live`, async () => {
    const page = await open(`/ui/tasks/${lang.failing}`);
    await page.waitForSelector('#live-state:text("live")');
    assert.equal(await page.getAttribute('#task-status', 'data-status'), 'error');
    const right = page.locator('#dag a.node[data-step="right"]');
    assert.match(await right.getAttribute('class'), /st-error/);
    assert.match(await page.locator('#dag a.node[data-step="left"]').getAttribute('class'), /st-complete/);
    // The failed step is selected: its error is shown.
    assert.ok((await page.locator('#step-error-code').textContent()).trim().length > 0);
    assert.equal(await page.locator('#timeline rect.bar.failed').count() >= 1, true);
    if (i === 0) {
      await shot(page, 'task-failed');
      await accessible(page, 'task page');
    }
    await markPage(page);
    await page.click('#retry-step');
    await page.locator('#confirm[open]').waitFor();
    if (i === 0) { await shot(page, 'task-retry-confirm'); }
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelector('#dag a.node[data-step="right"]')?.classList.contains('st-complete'));
    await page.waitForFunction(() => document.querySelector('#task-status')?.dataset.status === 'complete');
    assert.match(await page.locator('#dag a.node[data-step="end"]').getAttribute('class'), /st-complete/);
    assert.ok(await notReloaded(page), 'the page was reloaded');
    if (i === 0) { await shot(page, 'task-retried'); }
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

test('a running slow task is cancelled from its page', async () => {
  const uuid = await createTask(FIXTURE.slow_requests[0]);
  const page = await open(`/ui/tasks/${uuid}`);
  await page.waitForFunction(() => document.querySelector('#dag a.node[data-step="start"]')?.dataset.status === 'in_progress');
  await page.click('#dag a.node[data-step="start"]');
  await page.waitForSelector('#step-title:has-text("start")');
  await shot(page, 'task-running');
  await markPage(page);
  await page.click('#cancel-task');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.querySelector('#task-status')?.dataset.status === 'cancelled');
  assert.ok(await notReloaded(page));
  assert.equal(await page.locator('#cancel-task').count(), 0, 'no cancel button on an ended task');
  await page.close();
});

test('several tasks are selected and cancelled together', async () => {
  const bulk = [await createTask(FIXTURE.slow_requests[1]), await createTask(FIXTURE.slow_requests[2])];
  const page = await open('/ui/tasks?limit=200');
  await page.waitForSelector('#live-state:text("live")');
  for (const uuid of bulk) {
    await page.check(`tr[data-task="${uuid}"] input.select`);
  }
  assert.equal(await page.locator('#selection-count').textContent(), `${bulk.length} selected`);
  await page.click('#cancel-selected');
  await page.click('#confirm-ok');
  for (const uuid of bulk) {
    await page.waitForFunction((u) => document.querySelector(`tr[data-task="${u}"]`)?.dataset.status === 'cancelled', uuid);
  }
  await shot(page, 'tasks-after-bulk-cancel');
  await page.close();
});

test('a task with 500 steps renders in under a second', async () => {
  const page = await context.newPage();
  const started = Date.now();
  const res = await page.goto(`${BASE}/ui/tasks/${FIXTURE.big}`, { waitUntil: 'load' });
  const ms = Date.now() - started;
  assert.equal(res.status(), 200);
  assert.equal(await page.locator('#dag a.node').count(), 500);
  console.log(`500-step task page: ${ms} ms to load (first view of this template version, layout included)`);
  assert.ok(ms < 1000, `500-step task page took ${ms} ms`);
  const again = Date.now();
  await page.reload({ waitUntil: 'load' });
  console.log(`500-step task page: ${Date.now() - again} ms to load again`);
  await shot(page, 'task-500-steps');
  await page.close();
});

test('the workflows page shows every template with its statistics', async () => {
  const page = await open('/ui/workflows?window=24h');
  for (const lang of FIXTURE.languages) {
    for (const ns of lang.namespaces) {
      assert.ok(await page.locator(`tr[data-workflow^="${ns}/"]`).count() >= 1, `${ns} listed`);
    }
  }
  const failing = await page.locator('td a.bad').count();
  assert.ok(failing >= FIXTURE.languages.length, `failure ratios shown: ${failing}`);
  await shot(page, 'workflows');
  await accessible(page, 'workflows page');
  await page.close();
});

test('the workers page shows a live worker per language and the namespace nobody serves', async () => {
  const page = await open('/ui/workers');
  for (const lang of FIXTURE.languages) {
    const alive = await page.locator(`tr[data-language="${lang.name}"] .badge.w-alive`).count();
    assert.equal(alive, 1, `${lang.name} worker alive`);
  }
  assert.match(await page.locator('tr[data-namespace="ui_big"]').textContent(), /no worker/);
  await page.locator('#unserved').waitFor();
  await shot(page, 'workers');
  await accessible(page, 'workers page');
  await page.close();
});
