// What the browser suites share: Debian's Chromium launched by playwright-core with the flags
// this machine needs, and the axe-core check of a page.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

// playwright-core starts Chromium with a fresh temporary profile of its own (and refuses a
// --user-data-dir argument), removed when the browser closes.
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.TASKER_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// axe-core on the page as it is: serious and critical WCAG 2 A/AA violations fail the test.
// The page's context needs `bypassCSP` for the script to be injected.
export async function accessible(page, what) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what}: accessibility violations: ${JSON.stringify(bad, null, 1)}`);
}
