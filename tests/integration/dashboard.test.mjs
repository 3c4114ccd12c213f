// The office dashboard (README "Office dashboard") in a real browser: headless Chromium from
// Debian driven by puppeteer-core, against the real binary on a synthetic district with two
// months of simulated traffic. Screenshots of every page go to $BANGFU_ARTIFACTS (ctest sets
// build/artifacts) as office-*.png (the office CLI has its own office.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { BIN, makeDistrictWith, startServer } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.BANGFU_ARTIFACTS || join(process.cwd(), 'artifacts');
const USER = '王主任';
const PASSWORD = 'fupinban-2026!';

// Dates in the service's zone (Asia/Shanghai).
const shanghai = new Date(Date.now() + 8 * 3600 * 1000);
const today = shanghai.toISOString().slice(0, 10);
const ym = (y, m) => `${y}-${String(m).padStart(2, '0')}`;
const thisMonth = today.slice(0, 7);
const [year, month] = [shanghai.getUTCFullYear(), shanghai.getUTCMonth() + 1];
const lastMonth = month === 1 ? ym(year - 1, 12) : ym(year, month - 1);
const monthBefore = month <= 2 ? ym(year - 1, month + 10) : ym(year, month - 2);
const lastDayOf = (m) => {
  const [y, mm] = m.split('-').map(Number);
  return `${m}-${String(new Date(Date.UTC(y, mm, 0)).getUTCDate()).padStart(2, '0')}`;
};

let district, server, browser, page;
const shots = [];

async function shot(name) {
  const file = join(ARTIFACTS, `office-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const roster = execFileSync(BIN, ['simulate', 'roster', '--as-of', lastDayOf(monthBefore)],
    { maxBuffer: 1 << 26 }).toString();
  const entry = JSON.parse(execFileSync(BIN, ['office', 'passwd', '--name', USER],
    { input: `${PASSWORD}\n` }).toString());
  assert.match(entry.hash, /^\$argon2id\$/);
  district = makeDistrictWith({ office: { enabled: true, users: [entry] } }, roster);
  // Last month and this month up to today, through the real dispatcher.
  execFileSync(BIN, ['simulate', 'traffic', '--roster', join(district.dir, 'roster.csv'),
    '--from', `${lastMonth}-01`, '--to', today, '--config', district.config, '--apply',
    '--out', join(district.dir, 'traffic.jsonl')], { maxBuffer: 1 << 26, stdio: 'ignore' });
  server = await startServer(district.config);
  // A message the bot cannot record, with markup in it: the inbox must show it as text.
  execFileSync(BIN, ['say', '--config', district.config, '--url', server.base, '--from',
    'stranger', '<b>粗体</b><script>alert(1)</script> 你好']);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800 });
});

after(async () => {
  if (browser) await browser.close();
  if (server) { server.child.kill('SIGTERM'); await server.exited; }
  for (const f of shots) console.log(`screenshot: ${f}`);
});

const text = (sel) => page.$eval(sel, (e) => e.textContent.trim());

// The figures of one ledger (or the district) in `bangfu bulletin --kind monthly`.
function bulletinFigures(period, ledger) {
  const args = ['bulletin', '--config', district.config, '--kind', 'monthly', '--period', period];
  if (ledger) args.push('--ledger', ledger);
  const md = execFileSync(BIN, args, { maxBuffer: 1 << 26 }).toString();
  const cov = md.match(/覆盖率 (\d+\.\d%)\*\*，应走访 (\d+) 个结对，已走访 \*\*(\d+)\*\* 个/);
  assert.ok(cov, `no coverage line in the bulletin:\n${md.slice(0, 400)}`);
  const visits = md.match(/走访 (\d+) 次/);
  const phoneOnly = md.match(/（(\d+) 个结对仅电话联系）/);
  return {
    coverage: cov[1], fraction: `${cov[3]}/${cov[2]}`,
    visits: visits ? visits[1] : null, phoneOnly: phoneOnly ? phoneOnly[1] : '0',
  };
}

test('a page without a session leads to the login page', async () => {
  await page.goto(`${server.base}/office/units`);
  assert.equal(new URL(page.url()).pathname, '/office/login');
  assert.ok(await page.$('input[name=name]'));
  assert.ok(await page.$('input[name=password][type=password]'));
  await shot('login');
});

test('a wrong password is refused with a message', async () => {
  await page.type('input[name=name]', USER);
  await page.type('input[name=password]', 'not-the-password');
  const [res] = await Promise.all([page.waitForNavigation(), page.click('#login')]);
  assert.equal(res.status(), 401);
  assert.match(await text('.error'), /用户名或密码不对/);
  const cookies = await page.cookies();
  assert.equal(cookies.find((c) => c.name === 'bangfu_office'), undefined);
});

test('log in: the session cookie is HttpOnly and SameSite=Strict', async () => {
  await page.goto(`${server.base}/office/login`);
  await page.type('input[name=name]', USER);
  await page.type('input[name=password]', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  assert.equal(new URL(page.url()).pathname, '/office/');
  const cookie = (await page.cookies()).find((c) => c.name === 'bangfu_office');
  assert.ok(cookie, 'no session cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.match(cookie.value, /^[0-9a-f]{64}$/);
  assert.equal(await text('.user'), USER);
});

test('the overview shows the same figures as the bulletin', async () => {
  await page.goto(`${server.base}/office/?month=${thisMonth}`);
  await shot('overview');
  for (const [code, ledger] of [['cadre', 'cadre'], ['health', 'health'],
    ['education', 'education'], ['all', null]]) {
    const b = bulletinFigures(lastMonth, ledger);
    const cell = (f) => text(`#last-month td[data-figure="${f}-${code}"]`);
    assert.equal(await cell('coverage'), b.coverage, `${code} coverage`);
    assert.equal(await cell('fraction'), b.fraction, `${code} visited/due`);
    if (ledger) {
      assert.equal(await cell('visits'), b.visits, `${code} visits`);
      assert.equal(await cell('phone-only'), b.phoneOnly, `${code} phone only`);
    }
    // This month so far, against the bulletin of the running month.
    const now = bulletinFigures(thisMonth, ledger);
    assert.equal(await text(`#this-month td[data-figure="coverage-${code}"]`), now.coverage);
  }
  // The 12-month trend: one month label per month, bars for the months with pairings due.
  const labels = await page.$$eval('#trend text.month', (els) => els.map((e) => e.textContent));
  assert.equal(labels.length, 12);
  assert.equal(labels[11], `${month}月`);
  const bars = await page.$$eval('#trend rect.bar', (els) => els.map((e) => e.dataset.month));
  assert.deepEqual(bars.slice(-2), [lastMonth, thisMonth]);
  // On a phone's screen the page fits its width (tables scroll inside their own box).
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await page.reload();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone`);
  await shot('overview-phone');
  await page.setViewport({ width: 1200, height: 800 });
});

test('follow a unit from the ranking to its helpers and pairings', async () => {
  await Promise.all([page.waitForNavigation(), page.click('nav a[href="/office/units"]')]);
  await shot('units');
  const first = await page.$eval('a.unit-link', (a) => ({
    name: a.textContent, coverage: a.closest('tr').children[2].textContent,
  }));
  await Promise.all([page.waitForNavigation(), page.click('a.unit-link')]);
  assert.match(await text('h1'), new RegExp(first.name));
  assert.equal(await text('#unit-coverage'), first.coverage);
  const rows = await page.$$('section.helper tbody tr');
  assert.ok(rows.length > 0, 'a unit with no pairings listed');
  await shot('unit');
});

test('the problems page lists open problems with full names', async () => {
  await Promise.all([page.waitForNavigation(), page.click('nav a[href="/office/problems"]')]);
  const open = Number(await text('#open-count'));
  assert.ok(open > 0, 'the simulated traffic reports problems');
  const names = await page.$$eval('#problems td.household', (tds) => tds.map((t) => t.textContent));
  assert.equal(names.length, open);
  assert.ok(names.every((n) => n.length >= 2 && !n.includes('*')), 'names are masked');
  await shot('problems');
});

test('occasions and the inbox; markup in a message stays text', async () => {
  await Promise.all([page.waitForNavigation(), page.click('nav a[href="/office/occasions"]')]);
  assert.match(await text('h1'), /五必访/);
  await shot('occasions');
  await Promise.all([page.waitForNavigation(), page.click('nav a[href="/office/inbox"]')]);
  const row = await page.$$eval('#inbox tbody tr', (trs) => trs
    .filter((tr) => tr.textContent.includes('粗体'))
    .map((tr) => ({ text: tr.children[2].textContent, tags: tr.querySelectorAll('b, script').length,
      reason: tr.children[3].textContent, reply: tr.children[4].textContent })));
  assert.equal(row.length, 1);
  assert.equal(row[0].text, '@帮扶助手 <b>粗体</b><script>alert(1)</script> 你好');
  assert.equal(row[0].tags, 0);
  assert.equal(row[0].reason, '发送人不在名册');
  assert.notEqual(row[0].reply, '—', 'the bot answered the stranger');
  await shot('inbox');
  // Commands (我的结对, 本月进度 …) from people in the roster were answered, not missed: they
  // are not listed. (The simulated traffic has senders outside the roster too; theirs are.)
  const rows = await page.$$eval('#inbox tbody tr', (trs) => trs.map((tr) => ({
    text: tr.children[2].textContent, reason: tr.children[3].textContent })));
  assert.ok(rows.length > 1, 'the simulated traffic has messages the bot did not understand');
  assert.ok(!rows.some((r) => r.reason !== '发送人不在名册' && /我的结对|本月进度/.test(r.text)),
    'a command from a helper in the roster is listed');
});

test('download the ledger as a real XLSX', async () => {
  await Promise.all([page.waitForNavigation(), page.click('nav a[href="/office/exports"]')]);
  await shot('exports');
  const dir = join(district.dir, 'downloads');
  mkdirSync(dir, { recursive: true });
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir });
  const href = `/office/exports/ledger.xlsx?month=${lastMonth}`;
  await page.click(`a.download[href="${href}"]`);
  const file = join(dir, `bangfu-ledger-${lastMonth}.xlsx`);
  for (let i = 0; i < 100 && !existsSync(file); ++i) await new Promise((r) => setTimeout(r, 100));
  assert.ok(existsSync(file), `no download in ${dir}: ${readdirSync(dir)}`);
  const bytes = readFileSync(file);
  assert.equal(bytes.subarray(0, 4).toString('binary'), 'PK\x03\x04', 'not a zip file');
  for (const part of ['[Content_Types].xml', 'xl/workbook.xml', 'xl/worksheets/sheet1.xml'])
    assert.ok(bytes.includes(Buffer.from(part)), `no ${part} in the workbook`);
});

test('log out: the session is gone', async () => {
  const before = (await page.cookies()).find((c) => c.name === 'bangfu_office').value;
  await Promise.all([page.waitForNavigation(), page.click('#logout')]);
  assert.equal(new URL(page.url()).pathname, '/office/login');
  assert.match(await text('.note'), /已退出/);
  await page.goto(`${server.base}/office/`);
  assert.equal(new URL(page.url()).pathname, '/office/login');
  // The old cookie no longer opens anything, even sent by hand.
  const res = await fetch(`${server.base}/office/`, {
    headers: { cookie: `bangfu_office=${before}` }, redirect: 'manual',
  });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/office/login');
});

test('five wrong passwords in a minute pause the address', async () => {
  const login = (password) => fetch(`${server.base}/office/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ name: USER, password }),
  });
  // One wrong password was typed in the browser above, within this minute.
  for (let i = 0; i < 4; ++i) assert.equal((await login(`wrong-${i}`)).status, 401);
  const paused = await login(PASSWORD);
  assert.equal(paused.status, 429, 'even the right password waits out the pause');
  assert.ok(Number(paused.headers.get('retry-after')) > 0);
  assert.match(await paused.text(), /请 \d+ 秒后再试/);
});
