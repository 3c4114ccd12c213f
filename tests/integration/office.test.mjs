// The office's command line (issue 10) through the real binary, while `bangfu serve` runs on the
// same database: corrections in the chat, checkin list/void/add, audit list, inbox list and the
// guarded roster import. Exit codes and output are the interface, so they are what is checked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN, ROSTER, makeDistrict, makeDistrictWith, startServer, checkin,
} from './harness.mjs';

let district;
let server;
let seq = 0;

const ENV = { ...process.env, SUDO_USER: '', LOGNAME: 'clerk', USER: 'clerk' };

// Runs `bangfu ARGS --config CONFIG`: { code, out, err }.
function bangfu(...args) {
  const r = spawnSync(BIN, [...args, '--config', district.config], { env: ENV, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function json(...args) {
  const r = bangfu(...args, '--format', 'json');
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

function say(userid, text) {
  return checkin(server.base, `office-${++seq}`, userid, `@帮扶助手 ${text}`);
}

// Display columns as a terminal shows them: CJK and full-width forms take two.
function width(s) {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    w += (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
      (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) ? 2 : 1;
  }
  return w;
}

before(async () => {
  district = makeDistrict();
  server = await startServer(district.config);
});

after(async () => {
  if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
});

test('every office subcommand answers --help', () => {
  for (const cmd of ['checkin list', 'checkin void', 'checkin add', 'audit list', 'inbox list',
    'roster import']) {
    const r = spawnSync(BIN, [...cmd.split(' '), '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, new RegExp(`^usage: bangfu ${cmd} --config FILE`), cmd);
  }
});

test('更正 in the chat replaces the last check-in; checkin list shows both', async () => {
  const first = await say('zhangwei', '走访 王秀英户 今天 送去棉被');
  assert.match(first.content, /已记下/);
  const fix = await say('zhangwei', '更正 走访 李德明户 今天');
  assert.match(fix.content, /^已更正：\S+ 走访 王\*英户 → \S+ 走访 李\*明户/);
  assert.doesNotMatch(fix.content, /王秀英|李德明/);

  const rows = json('checkin', 'list', '--helper', 'zhangwei');
  assert.equal(rows.length, 2);
  const [old, fresh] = rows.sort((a, b) => a.id - b.id);
  for (const k of ['id', 'msgid', 'helper_id', 'household_id', 'person', 'ledger', 'visit_date',
    'mode', 'status']) assert.ok(k in old, k);
  assert.equal(old.household_id, 'H001');
  assert.equal(old.status, 'corrected');
  assert.equal(old.corrected_by, fresh.id);
  assert.equal(fresh.household_id, 'H002');
  assert.equal(fresh.status, 'active');
  assert.equal(fresh.ledger, 'cadre');
  assert.equal(fresh.person, null);
  assert.deepEqual(json('checkin', 'list', '--household', 'H001').map((r) => r.id), [old.id]);
});

test('checkin add enters a paper record while the service runs; bad input exits 2', () => {
  const before = json('checkin', 'list');
  const bad = [
    [['--helper', 'dr_zhao', '--household', 'H003', '--date', '2099-01-01', '--mode', 'service',
      '--reason', '纸质记录'], /in the future/],
    [['--helper', 'dr_zhao', '--household', 'H001', '--date', '2026-01-05', '--mode', 'service',
      '--reason', '纸质记录'], /no pairing with household 'H001'/],
    [['--helper', 'nobody', '--household', 'H003', '--date', '2026-01-05', '--mode', 'service',
      '--reason', '纸质记录'], /not in the roster/],
    [['--helper', 'dr_zhao', '--household', 'H003', '--date', '2026-01-05', '--mode', 'walk',
      '--reason', '纸质记录'], /--mode must be visit/],
    [['--helper', 'dr_zhao', '--household', 'H003', '--date', '2026-02-30', '--mode', 'service',
      '--reason', '纸质记录'], /--date must be a real date/],
    [['--helper', 'dr_zhao', '--household', 'H003', '--person', '王五', '--date', '2026-01-05',
      '--mode', 'service', '--reason', '纸质记录'], /'王五' is not paired/],
    [['--helper', 'dr_zhao', '--household', 'H003', '--date', '2026-01-05', '--mode', 'service',
      '--reason', '  '], /--reason is empty/],
    [['--helper', 'dr_zhao', '--household', 'H003', '--date', '2026-01-05', '--mode', 'service'],
      /missing --reason/],
  ];
  for (const [args, message] of bad) {
    const r = bangfu('checkin', 'add', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }
  assert.deepEqual(json('checkin', 'list'), before);

  const ok = bangfu('checkin', 'add', '--helper', 'dr_zhao', '--household', 'H003', '--person',
    '赵桂兰', '--date', '2026-01-05', '--mode', 'service', '--note', '上门测血压',
    '--reason', '纸质记录补录');
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^recorded check-in #\d+ 2026-01-05 上门服务 dr_zhao → H003 赵桂兰/);
  const added = json('checkin', 'list', '--helper', 'dr_zhao', '--month', '2026-01');
  assert.equal(added.length, 1);
  assert.equal(added[0].msgid, null);
  assert.equal(added[0].entered_by, 'office:clerk');
  assert.equal(added[0].person, '赵桂兰');
  assert.equal(added[0].ledger, 'health');
  assert.equal(added[0].mode, 'service');
});

test('checkin void keeps the record, stops it counting, and refuses twice', () => {
  const [target] = json('checkin', 'list', '--helper', 'dr_zhao');
  for (const [args, message] of [
    [['--id', 'abc', '--reason', 'x'], /--id must be a check-in number/],
    [['--id', '999999', '--reason', 'x'], /no check-in #999999/],
    [['--id', String(target.id)], /missing --reason/],
  ]) {
    const r = bangfu('checkin', 'void', ...args);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
  }
  const r = bangfu('checkin', 'void', '--id', String(target.id), '--reason', '重复录入');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^voided check-in #\d+/);
  const again = bangfu('checkin', 'void', '--id', String(target.id), '--reason', '重复录入');
  assert.equal(again.code, 2);
  assert.match(again.err, /already void \(by office:clerk\); nothing changed/);
  const [after] = json('checkin', 'list', '--helper', 'dr_zhao');
  assert.equal(after.status, 'void');
  assert.equal(after.undone_by, 'office:clerk');
});

test('audit list says who, when, before/after and why', () => {
  const entries = json('audit', 'list');
  const correct = entries.find((e) => e.action === 'checkin_correct');
  assert.equal(correct.actor, 'zhangwei');
  assert.equal(correct.detail.before.status, 'active');
  assert.ok(correct.detail.after.id > 0);
  assert.match(correct.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
  const add = entries.find((e) => e.action === 'checkin_add');
  assert.equal(add.actor, 'office:clerk');
  assert.equal(add.detail.reason, '纸质记录补录');
  const voided = entries.find((e) => e.action === 'checkin_void');
  assert.deepEqual(voided.detail.changes.status, ['active', 'void']);
  assert.equal(voided.detail.reason, '重复录入');
  assert.deepEqual(json('audit', 'list', '--since', '2099-01-01'), []);
  const bad = bangfu('audit', 'list', '--since', '2026-13-01');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--since must be a real date/);
  const table = bangfu('audit', 'list');
  assert.equal(table.code, 0);
  assert.match(table.out, /checkin_void .*reason: 重复录入/);
});

test('inbox list shows what the bot did not record, with its answer', async () => {
  const r = await say('zhangwei', '今天天气不错');
  const stranger = await say('nobody', '走访 王秀英户');
  const all = json('inbox', 'list');
  const texts = all.map((e) => e.text);
  assert.ok(texts.includes('@帮扶助手 今天天气不错'), JSON.stringify(all));
  assert.ok(texts.includes('@帮扶助手 走访 王秀英户'));
  assert.ok(!texts.some((t) => t.includes('更正')), 'recorded messages are not in the inbox');
  const mine = all.find((e) => e.text === '@帮扶助手 今天天气不错');
  assert.equal(mine.status, 'not_understood');
  assert.equal(mine.reply, r.content);
  assert.equal(mine.userid, 'zhangwei');
  assert.equal(mine.helper_name, '张伟');
  assert.equal(all.find((e) => e.userid === 'nobody').reply, stranger.content);
  assert.deepEqual(json('inbox', 'list', '--status', 'failed'), []);
  assert.deepEqual(json('inbox', 'list', '--status', 'rate_limited'), []);
  assert.equal(json('inbox', 'list', '--status', 'not_understood').length, all.length);
  const bad = bangfu('inbox', 'list', '--status', 'lost');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--status must be not_understood, failed, rate_limited or all/);
  const badFormat = bangfu('inbox', 'list', '--format', 'xml');
  assert.equal(badFormat.code, 2);
});

test('tables line up with Chinese text', () => {
  const r = bangfu('checkin', 'list');
  assert.equal(r.code, 0);
  const lines = r.out.trimEnd().split('\n');
  const header = lines[0];
  const col = width(header.slice(0, header.indexOf('走访日期')));
  const rows = lines.slice(2, -1);
  assert.ok(rows.length >= 3);
  for (const line of rows) {
    const m = line.match(/\d{4}-\d\d-\d\d/);
    assert.equal(width(line.slice(0, m.index)), col, line);
    const who = line.indexOf(' 区直') >= 0 ? line.indexOf(' 区直') : line.indexOf(' 卫生');
    assert.equal(width(line.slice(0, who + 1)), width(header.slice(0, header.indexOf('台账'))), line);
  }
  assert.match(lines.at(-1), /^\d+ 条$/);
});

test('roster import: --dry-run, only the ledgers in the file, refusal above 10%, --force', () => {
  const lines = ROSTER.trimEnd().split('\n');
  const file = (name, keep) => {
    const path = join(district.dir, name);
    writeFileSync(path, [lines[0], ...lines.slice(1).filter(keep)].join('\n') + '\n');
    return path;
  };
  const auditCount = () => json('audit', 'list').length;
  const open = () => json('checkin', 'list').length;  // unchanged by imports; a sanity anchor

  // The health office's sheet alone ends no cadre or education pairing.
  const health = file('health.csv', (l) => l.includes(',卫生,'));
  const dry = bangfu('roster', 'import', '--dry-run', health);
  assert.equal(dry.code, 0, dry.err);
  assert.match(dry.out, /^dry run, nothing changed: 1 pairings .* 0 would end\n/);
  assert.match(dry.out, /卫生 health: 0 new, 0 updated, 1 unchanged, 0 ended \(of 1 open\)/);
  assert.doesNotMatch(dry.out, /cadre|education/);
  const n = auditCount();
  const real = bangfu('roster', 'import', health);
  assert.equal(real.code, 0, real.err);
  assert.equal(auditCount(), n + 1);  // the import itself; nothing ended

  // A cadre sheet missing one of the two cadre pairings: 50% > 10%, refused.
  const cadre = file('cadre.csv', (l) => l.includes(',区直,') && !l.includes(',H002,'));
  const before = auditCount();
  const refused = bangfu('roster', 'import', cadre);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /refusing to end 1 of the 2 open pairings of ledger cadre/);
  assert.match(refused.err, /--force/);
  assert.equal(auditCount(), before);

  // --ledger naming a ledger the file leaves out would end all of it: refused too.
  const all = bangfu('roster', 'import', '--ledger', 'cadre,health,education', health);
  assert.equal(all.code, 2);
  assert.match(all.err, /refusing to end 2 of the 2 open pairings of ledger cadre/);
  assert.match(all.err, /refusing to end 1 of the 1 open pairings of ledger education/);
  const outside = bangfu('roster', 'import', '--ledger', 'cadre', health);
  assert.equal(outside.code, 2);
  assert.match(outside.err, /1 rows of ledger health, which --ledger does not name/);
  assert.equal(auditCount(), before);

  // A dry run with --force lists what would end, and still changes nothing.
  const preview = bangfu('roster', 'import', '--dry-run', '--force', cadre);
  assert.equal(preview.code, 0, preview.err);
  assert.match(preview.out, /would end on \d{4}-\d\d-\d\d:\n {2}cadre {2}zhangwei 张伟 -> H002 李德明\n/);
  assert.equal(auditCount(), before);

  const forced = bangfu('roster', 'import', '--force', cadre);
  assert.equal(forced.code, 0, forced.err);
  assert.match(forced.out, /区直 cadre: 0 new, 0 updated, 1 unchanged, 1 ended \(of 2 open\)/);
  const ended = json('audit', 'list').filter((e) => e.action === 'pairing_end');
  assert.equal(ended.length, 1);
  assert.equal(ended[0].actor, 'office:clerk');
  assert.equal(ended[0].detail.household_id, 'H002');
  assert.equal(open(), json('checkin', 'list').length);
});

test('inbox list shows rate-limited messages with the answer the sender got', async () => {
  const d = makeDistrictWith({ limits: { per_sender_per_minute: 1 } });
  const s = await startServer(d.config);
  try {
    const ok = await checkin(s.base, 'rl-1', 'zhangwei', '@帮扶助手 走访 王秀英户 今天');
    assert.match(ok.content, /已记下/);
    const slow = await checkin(s.base, 'rl-2', 'zhangwei', '@帮扶助手 走访 李德明户 今天');
    assert.match(slow.content, /发得太快了/);
    const r = spawnSync(BIN, ['inbox', 'list', '--config', d.config, '--status', 'rate_limited',
      '--format', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const entries = JSON.parse(r.stdout);
    assert.deepEqual(entries.map((e) => [e.msgid, e.status, e.reply]),
      [['rl-2', 'rate_limited', slow.content]]);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
});
