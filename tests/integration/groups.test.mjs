// Several groups end to end (README "Several groups (多个群)"): the real `bangfu serve` posting
// to two fake WeCom group robots (node:http on 127.0.0.1, OS-assigned ports). Group 高新扶贫
// lists all three ledgers, group 卫生健康 only health. Time is the scheduler's injected clock
// (BANGFU_FAKE_CLOCK_FILE, TEST ONLY), as in delivery.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import {
  BIN, makeDistrictWith, callback, post, openReply, fakeClock, shanghai as at, sleep, startServer,
} from './harness.mjs';

const run = promisify(execFile);
const KEY_A = 'GROUPAKEY0123456789';
const KEY_B = 'GROUPBKEY9876543210';


// A group robot that accepts everything and records it.
function fakeRobot(name) {
  const requests = [];
  const robot = { name, requests, port: 0 };
  const server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { data += d; });
    req.on('end', () => {
      const body = JSON.parse(data);
      const type = body.msgtype;
      requests.push({
        url: req.url, raw: data, msgtype: type,
        content: type === 'image' ? '' : body[type].content,
        mentioned: body[type].mentioned_list ?? [],
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errcode: 0, errmsg: 'ok' }));
    });
  });
  robot.url = (key) => `http://127.0.0.1:${robot.port}/cgi-bin/webhook/send?key=${key}`;
  robot.start = () => new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => { robot.port = server.address().port; resolve(); });
  });
  robot.close = () => { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); };
  return robot;
}

let district;
let clock;
let groupA;
let groupB;
let service = null;

async function startService() {
  service = await startServer(district.config, { env: clock.env });
  return service;
}

async function stopService() {
  if (!service) return null;
  const s = service;
  service = null;
  s.child.kill('SIGTERM');
  const result = await s.exited;
  assert.doesNotMatch(s.log(), new RegExp(`${KEY_A}|${KEY_B}`), 'no webhook key is logged');
  return result;
}

// `bangfu outbox list`, parsed by its header: the columns, GROUP among them.
async function outbox() {
  const { stdout } = await run(BIN, ['outbox', 'list', '--config', district.config]);
  const lines = stdout.trimEnd().split('\n');
  if (lines[0] === 'the outbox is empty') return [];
  const header = lines[0].trim().split(/\s+/);
  assert.deepEqual(header, ['ID', 'KIND', 'PERIOD', 'LEDGER', 'GEN', 'PART', 'STATUS', 'TRIES', 'WHEN',
    'GROUP', 'LAST', 'ERROR']);
  return lines.slice(1).map((l) => {
    const [id, kind, period, ledger, gen, part, status, tries, when, group] = l.trim().split(/\s+/);
    return { id: Number(id), kind, period, ledger, gen: Number(gen), part, status, group, line: l };
  });
}

// Moves the clock forward `step` seconds every few milliseconds until `done()` holds.
const advanceUntil = (done, opts = {}) => clock.advanceUntil(done, { log: () => service?.log(), ...opts });

async function untilDelivered(match, what) {
  await advanceUntil(async () => {
    const rows = await outbox();
    return rows.some(match) && rows.every((r) => r.status !== 'pending' && r.status !== 'sending');
  }, { what });
}

// The ledgers and charts of `messages` in order, runs collapsed: ['区直', 'chart', '卫生', …].
function ledgerRuns(messages) {
  const runs = [];
  for (const m of messages) {
    const k = m.msgtype === 'image' ? 'chart' : (m.content.match(/(区直|卫生|教育)台账/) ?? [])[1];
    if (runs.at(-1) !== k) runs.push(k);
  }
  return runs;
}

function noDuplicates(messages, label) {
  const seen = new Set();
  for (const m of messages) {
    assert.ok(!seen.has(m.raw), `${label}: a message was posted twice`);
    seen.add(m.raw);
  }
}

before(async () => {
  groupA = fakeRobot('高新扶贫');
  groupB = fakeRobot('卫生健康');
  await groupA.start();
  await groupB.start();
  district = makeDistrictWith({
    groups: [
      { name: '高新扶贫', chat_id: 'wrkA', ledgers: ['cadre', 'health', 'education'], webhook_url: groupA.url(KEY_A) },
      { name: '卫生健康', ledgers: ['health'], webhook_url: groupB.url(KEY_B) },
    ],
  });
  clock = fakeClock(join(district.dir, 'clock'));
  clock.set(at(2027, 1, 15, 10));
});

after(async () => {
  if (service) service.child.kill('SIGKILL');
  await groupA.close();
  await groupB.close();
});

test('config check lists each group with its ledgers, the webhook keys masked', async () => {
  const r = await run(BIN, ['config', 'check', '--config', district.config]).catch((e) => e);
  const out = r.stdout;
  assert.match(out, /groups\[0\]\s+高新扶贫: cadre, health, education; chat_id wrkA; webhook http:\/\/127\.0\.0\.1:\d+\/cgi-bin\/webhook\/send\?key=\*\*\*/);
  assert.match(out, /groups\[1\]\s+卫生健康: health; webhook http:\/\/127\.0\.0\.1:\d+\/cgi-bin\/webhook\/send\?key=\*\*\*/);
  assert.doesNotMatch(out, new RegExp(`${KEY_A}|${KEY_B}`));
});

test('a reminder: each group is reminded of the helpers of its own ledgers', async () => {
  await startService();
  clock.set(at(2027, 1, 20, 15, 59));
  await untilDelivered((r) => r.kind === 'reminder', 'the reminders');
  const rows = (await outbox()).filter((r) => r.kind === 'reminder');
  assert.deepEqual([...new Set(rows.map((r) => r.group))].sort(), ['卫生健康', '高新扶贫']);
  assert.ok(rows.every((r) => r.status === 'sent'), rows.map((r) => r.line).join('\n'));
  const mentioned = (robot) => robot.requests.filter((m) => m.msgtype === 'text').flatMap((m) => m.mentioned).sort();
  assert.deepEqual(mentioned(groupA), ['dr_zhao', 'teacher_liu', 'zhangwei']);
  assert.deepEqual(mentioned(groupB), ['dr_zhao']);
  for (const m of groupA.requests) assert.ok(m.url.endsWith(`key=${KEY_A}`));
  for (const m of groupB.requests) assert.ok(m.url.endsWith(`key=${KEY_B}`));
});

test('the monthly bulletins: each group gets the ledgers it lists, each exactly once', async () => {
  const a0 = groupA.requests.length;
  const b0 = groupB.requests.length;
  clock.set(at(2027, 2, 1, 8, 59));
  await untilDelivered((r) => r.kind === 'monthly' && r.ledger === 'education', 'January bulletins');
  const a = groupA.requests.slice(a0);
  const b = groupB.requests.slice(b0);
  assert.deepEqual(ledgerRuns(a), ['区直', 'chart', '卫生', 'chart', '教育', 'chart']);
  assert.deepEqual(ledgerRuns(b), ['卫生', 'chart']);
  noDuplicates(a, '高新扶贫');
  noDuplicates(b, '卫生健康');
  // The same health bulletin in both groups, word for word.
  const health = (ms) => ms.filter((m) => /卫生台账/.test(m.content)).map((m) => m.raw);
  assert.deepEqual(health(b), health(a));
  for (const m of [...a, ...b])
    assert.doesNotMatch(m.content, /王秀英|赵桂兰|刘洋/, 'beneficiaries masked');

  // outbox list names the group of every row; each group's rows are its own generation 1.
  const rows = (await outbox()).filter((r) => r.period === '2027-01');
  assert.equal(rows.filter((r) => r.group === '高新扶贫').length, a.length);
  assert.equal(rows.filter((r) => r.group === '卫生健康').length, b.length);
  assert.ok(rows.every((r) => r.status === 'sent' && r.gen === 1));
  assert.deepEqual([...new Set(rows.filter((r) => r.group === '卫生健康').map((r) => r.ledger))], ['health']);

  // A restart posts nothing again.
  const counts = [groupA.requests.length, groupB.requests.length];
  await stopService();
  await startService();
  const until = clock.now + 3600;
  await advanceUntil(() => clock.now >= until, { step: 120, what: 'an hour' });
  assert.deepEqual([groupA.requests.length, groupB.requests.length], counts);
});

test('a check-in from a one-to-one chat is answered there, with full names', async () => {
  const msg = (msgid, chattype) => ({
    msgid, aibotid: 'AIBOT', chattype, from: { userid: 'zhangwei' },
    ...(chattype === 'group' ? { chatid: 'wrkA' } : {}),
    response_url: 'https://example.invalid/resp', msgtype: 'text',
    text: { content: chattype === 'group' ? '@帮扶助手 今天走访了王秀英' : '今天走访了李德明' },
  });
  for (const [msgid, chattype, expect, hidden] of [
    ['g-1', 'group', /王\*英/, /王秀英/], ['s-1', 'single', /李德明/, /李\*明/]]) {
    const cb = callback(msg(msgid, chattype));
    const res = await post(service.base, cb);
    assert.equal(res.status, 200);
    const reply = openReply(await res.json(), cb.nonce);
    const content = reply.stream.content;
    assert.match(content, expect, `${chattype}: ${content}`);
    assert.doesNotMatch(content, hidden, `${chattype}: ${content}`);
  }
});

test('bulletin --post: once per group; --force posts again to every group that lists the ledger', async () => {
  await stopService();
  const env = { ...process.env, ...clock.env };
  const args = (ledger, ...more) => ['bulletin', '--config', district.config, '--kind', 'monthly',
    '--period', '2027-01', '--ledger', ledger, '--post', ...more];
  const counts = () => [groupA.requests.length, groupB.requests.length];
  const before = counts();
  const again = await run(BIN, args('health'), { env });
  assert.match(again.stderr, /already queued for group 高新扶贫 as generation 1/);
  assert.match(again.stderr, /already queued for group 卫生健康 as generation 1/);
  assert.deepEqual(counts(), before, 'nothing posted twice');

  const forced = await run(BIN, args('health', '--force'), { env });
  assert.match(forced.stderr, /for group 高新扶贫 as generation 2/);
  assert.match(forced.stderr, /for group 卫生健康 as generation 2/);
  assert.deepEqual(ledgerRuns(groupA.requests.slice(before[0])), ['卫生', 'chart']);
  assert.deepEqual(ledgerRuns(groupB.requests.slice(before[1])), ['卫生', 'chart']);

  // The cadre ledger is 高新扶贫's only; the district bulletin ("all") too, as it lists all three.
  const mid = counts();
  await run(BIN, args('cadre', '--force'), { env });
  assert.equal(groupB.requests.length, mid[1]);
  assert.deepEqual(ledgerRuns(groupA.requests.slice(mid[0])), ['区直', 'chart']);

  // A group removed from the config: its unsent rows fail with the reason, nothing crashes.
  const cfg = JSON.parse(readFileSync(district.config, 'utf8'));
  const failed = (await outbox()).find((r) => r.group === '卫生健康');
  cfg.groups = cfg.groups.filter((g) => g.name !== '卫生健康');
  writeFileSync(district.config, JSON.stringify(cfg));
  const { sqlite } = await import('./harness.mjs');
  sqlite(district.database, `UPDATE outbox SET status = 'failed' WHERE id = ${failed.id}`);
  const resent = await run(BIN, ['outbox', 'resend', '--config', district.config, '--post',
    String(failed.id)], { env }).catch((e) => e);
  assert.equal(resent.code, 1);
  assert.match(resent.stderr, /group '卫生健康' is not in the config/);
  const row = (await outbox()).find((r) => r.id === failed.id);
  assert.equal(row.status, 'failed');
  assert.match(row.line, /group '卫生健康' is not in the config/);
  assert.equal(groupB.requests.length, mid[1]);
});
