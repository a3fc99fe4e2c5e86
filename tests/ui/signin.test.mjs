// The dashboard behind API tokens, in Debian's Chromium driven by playwright-core. Started by
// tests/tests/dashboard.rs against a server with `--auth tokens`; the fixture
// (TASKER_UI_FIXTURE) names the tokens and the tasks. An operator signs in with a token, sees
// only the namespaces it may read, acts where it may write, and signs out.
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

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

// A fresh browser profile (no cookie) per test.
async function freshPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, bypassCSP: true });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

async function signIn(page, token) {
  await page.fill('#token', token);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
}

test('a page asks for a token, refuses a wrong one and shows only the readable namespaces', async () => {
  const page = await freshPage();
  await page.goto(`${BASE}/ui/tasks`);
  assert.equal(new URL(page.url()).pathname, '/ui/login');
  await page.screenshot({ path: join(SHOTS, 'signin.png'), fullPage: true });
  await accessible(page, 'sign-in page');

  await signIn(page, 'tkr_0000000000000000_' + '0'.repeat(64));
  assert.match(await page.locator('#login-problem').textContent(), /the token is not valid/);

  await signIn(page, FIXTURE.reader.secret);
  assert.equal(new URL(page.url()).pathname, '/ui/tasks');
  assert.equal((await page.locator('#signed-in').textContent()).trim(), FIXTURE.reader.name);
  assert.equal(await page.locator(`tr[data-task="${FIXTURE.readable_task}"]`).count(), 1);
  for (const hidden of FIXTURE.hidden_tasks) {
    assert.equal(await page.locator(`tr[data-task="${hidden}"]`).count(), 0, `${hidden} is listed`);
  }
  const namespaces = await page.locator('#f-namespace option').allTextContents();
  assert.deepEqual(namespaces.filter((n) => n.trim() && n.trim() !== 'any'), FIXTURE.reader.namespaces);
  await page.screenshot({ path: join(SHOTS, 'signed-in-tasks.png'), fullPage: true });

  // Another namespace's task page: 403 naming the scope.
  const res = await page.goto(`${BASE}/ui/tasks/${FIXTURE.hidden_tasks[0]}`);
  assert.equal(res.status(), 403);
  assert.match(await page.locator('#error-message').textContent(), /lacks the scope/);

  // Signing out forgets the token.
  await page.goto(`${BASE}/ui/tasks`);
  await Promise.all([page.waitForNavigation(), page.click('#sign-out')]);
  await page.goto(`${BASE}/ui/tasks`);
  assert.equal(new URL(page.url()).pathname, '/ui/login');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a writer cancels from the page; an action without the dashboard header is refused', async () => {
  const page = await freshPage();
  await page.goto(`${BASE}/ui/tasks/${FIXTURE.slow_task}`);
  await signIn(page, FIXTURE.writer.secret);
  assert.equal(new URL(page.url()).pathname, `/ui/tasks/${FIXTURE.slow_task}`);

  // The cookie alone, as a form or script of another site would send it: refused.
  const bare = await page.evaluate(async (uuid) => {
    const r = await fetch(`/v1/tasks/${uuid}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    return { status: r.status, body: await r.json() };
  }, FIXTURE.slow_task);
  assert.equal(bare.status, 403);
  assert.equal(bare.body.error.field, '/headers/x-tasker-csrf');

  await page.click('#cancel-task');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.querySelector('#task-status')?.dataset.status === 'cancelled');
  await page.waitForSelector('text=cancel by token ' + FIXTURE.writer.name);
  await page.screenshot({ path: join(SHOTS, 'cancelled-by-token.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
