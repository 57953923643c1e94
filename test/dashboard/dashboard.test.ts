import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { http, startOpsPair, STATION_MAC, uuid, vsiSpec } from '../harness/ops-pair.js';

/**
 * The dashboards in headless Chromium (Debian's, driven by playwright-core): the page loads,
 * shows a TSI as soon as it is associated and drops it when it is de-associated, without a
 * reload (the page follows the daemon's event stream).
 */
async function browser(t: { after(fn: () => unknown): void }): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'snve-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.SPLITNVE_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
  t.after(async () => {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return ctx;
}

function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  return errors;
}

test('nNVE dashboard: loads, shows an associated TSI live, drops it live on de-association', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  const ctx = await browser(t);
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(`${p.nUrl}/ui/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  assert.equal(await page.title(), 'splitnve nnve');
  await page.waitForSelector('#live.on', { timeout: 10_000 });
  for (const id of ['tsis', 'stations', 'vaps', 'pools', 'peers']) {
    assert.ok(await page.$(`#section-${id}`), `section ${id}`);
  }
  assert.match((await page.textContent('#section-pools')) ?? '', /300-399/);
  const tsiRows = '#section-tsis tbody tr';
  assert.equal((await page.$$(tsiRows)).length, 0);

  const r = await http(p.tUrl, 'POST', '/v1/requests', {
    mode: 'associate',
    vsi: vsiSpec(1, 5000),
  });
  assert.equal(r.status, 200);
  const row = page.locator(tsiRows, { hasText: uuid(1) });
  await row.waitFor({ timeout: 10_000 });
  const cells = await row.locator('td').allTextContents();
  assert.deepEqual(cells.slice(0, 4), ['swp1', STATION_MAC, uuid(1), 'Activated']);
  assert.match(cells[4]!, /vni=5000 mac=52:54:00:00:01:01 vid=300/);
  await page.locator('#section-vaps tbody tr', { hasText: '5000' }).waitFor({ timeout: 10_000 });
  await page
    .locator('#event-rows tr', { hasText: 'Init -> Activated' })
    .waitFor({ timeout: 10_000 });

  const d = await http(p.nUrl, 'POST', '/v1/deassociate', { port: 'swp1', station: STATION_MAC });
  assert.deepEqual(d.body, { deassociated: 1 });
  await page.locator(tsiRows, { hasText: uuid(1) }).waitFor({ state: 'detached', timeout: 10_000 });
  const ev = page.locator('#event-rows tr', { hasText: 'Activated -> Init (admin)' });
  await ev.waitFor({ timeout: 10_000 });
  assert.equal(await ev.locator('td.event').textContent(), 'tsi.state');
  await page
    .locator('#event-rows tr', { hasText: 'admin de-associate' })
    .waitFor({ timeout: 10_000 });
  assert.equal((await page.$$(tsiRows)).length, 0);
  // counters are shown
  assert.match((await page.textContent('#counter-grid')) ?? '', /node\.framesIn/);
  assert.deepEqual(errors, []);
});

test('tNVE dashboard: VMs and TSIs follow the lifecycle live', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  const ctx = await browser(t);
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(`${p.tUrl}/ui/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  assert.equal(await page.title(), 'splitnve tnve');
  await page.waitForSelector('#live.on', { timeout: 10_000 });
  const def = { interfaces: [{ vsiId: uuid(0x101), vni: 6001, macs: ['52:54:00:00:02:01'] }] };
  assert.equal((await http(p.tUrl, 'PUT', '/v1/vms/web', def)).status, 200);
  assert.equal((await http(p.tUrl, 'POST', '/v1/vms/web/start', {})).status, 200);
  const vm = page.locator('#section-vms tbody tr', { hasText: 'web' });
  await vm.locator('td', { hasText: /^running$/ }).waitFor({ timeout: 10_000 });
  // The VM's state and its interfaces' states come as separate events: wait for both.
  await page
    .locator('#section-vms tbody tr', { hasText: /web.*running.*Activated.*300 on eth0/ })
    .waitFor({ timeout: 10_000 });
  await page
    .locator('#section-tsis tbody tr', { hasText: uuid(0x101) })
    .locator('td', { hasText: /^Activated$/ })
    .waitFor({ timeout: 10_000 });
  assert.equal((await http(p.tUrl, 'POST', '/v1/vms/web/stop', {})).status, 200);
  await vm.locator('td', { hasText: /^shutoff$/ }).waitFor({ timeout: 10_000 });
  await page
    .locator('#section-tsis tbody tr', { hasText: uuid(0x101) })
    .waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(errors, []);
});
