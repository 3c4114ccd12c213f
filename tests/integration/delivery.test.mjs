// Delivery end to end: the real `bangfu serve` posting bulletins and reminders to a fake WeCom
// group robot (node:http on 127.0.0.1, an OS-assigned port) that answers errcode 45009 twice and
// then ok. Time is the scheduler's injected clock: BANGFU_FAKE_CLOCK_FILE (TEST ONLY) names a
// file of unix seconds that the test rewrites, so months pass in seconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { BIN, TOKEN, AES_KEY, fakeClock, scratchDir, shanghai as at, sleep, startServer } from './harness.mjs';

const run = promisify(execFile);
const KEY = 'SECRETKEY0123456789';

// --- a district big enough that the cadre bulletin needs several parts ----------------------------

const SURNAMES = [...'王李张刘陈杨赵黄周吴'];
const BENEFICIARY_GIVEN = [...'秀英德明桂兰玉海福珍'];  // none of these appear in helper names
const HELPER_GIVEN = [...'伟芳磊静敏军洋勇艳杰'];

function makeRoster() {
  const header = '帮扶人ID,帮扶人,手机,台账,单位,户编号,户主,帮扶对象,对象类别,村居,街道,结对日期';
  const rows = [header];
  const beneficiaries = [];
  const helpers = new Map();  // userid -> name
  let b = 0;
  let h = 0;
  const beneficiary = () => {
    const n = b++;
    const name = SURNAMES[n % 10] + BENEFICIARY_GIVEN[Math.floor(n / 10) % 10] +
      BENEFICIARY_GIVEN[Math.floor(n / 100) % 10];
    beneficiaries.push(name);
    return name;
  };
  const helper = (prefix) => {
    const n = h++;
    const id = `${prefix}${String(n).padStart(3, '0')}`;
    const name = SURNAMES[n % 10] + HELPER_GIVEN[Math.floor(n / 10) % 10] +
      HELPER_GIVEN[Math.floor(n / 100) % 10];
    helpers.set(id, name);
    return [id, name];
  };
  const ledgers = [
    ['区直', 'cadre', 30, 3, (unit) => `区直第${unit}局`],
    ['卫生', 'doctor', 5, 4, (unit) => `第${unit}卫生院`],
    ['教育', 'teacher', 3, 4, (unit) => `第${unit}中学`],
  ];
  for (const [ledger, prefix, units, perUnit, unitName] of ledgers) {
    for (let u = 1; u <= units; u++) {
      for (let k = 0; k < perUnit; k++) {
        const [id, name] = helper(prefix);
        for (let j = 0; j < 2; j++) {
          const head = beneficiary();
          const person = ledger === '区直' ? '' : beneficiary();
          const category = ledger === '卫生' ? '患病' : ledger === '教育' ? '学生' : '';
          rows.push([id, name, '13800000000', ledger, unitName(u), `H${b}`, head, person, category,
            '河湾村', '高新街道', ''].join(','));
        }
      }
    }
  }
  return { csv: rows.join('\n') + '\n', beneficiaries, helpers };
}

// --- the fake group robot -----------------------------------------------------------------------

function fakeRobot() {
  const requests = [];
  const hung = [];
  const robot = { requests, rejectFirst: 2, hang: null, port: 0 };
  const server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { data += d; });
    req.on('end', () => {
      const body = JSON.parse(data);
      const type = body.msgtype;
      const entry = {
        n: requests.length, url: req.url, raw: data, msgtype: type,
        content: type === 'image' ? '' : body[type].content,
        mentioned: body[type].mentioned_list ?? [], image: type === 'image' ? body.image : null,
        answer: null,
      };
      requests.push(entry);
      if (robot.hang && robot.hang(entry)) {
        entry.answer = 'hang';
        hung.push(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      if (robot.rejectFirst > 0) {
        robot.rejectFirst--;
        entry.answer = 45009;
        res.end(JSON.stringify({ errcode: 45009, errmsg: 'api freq out of limit' }));
        return;
      }
      entry.answer = 0;
      res.end(JSON.stringify({ errcode: 0, errmsg: 'ok' }));
    });
  });
  robot.accepted = () => requests.filter((r) => r.answer === 0);
  robot.start = () => new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => { robot.port = server.address().port; resolve(); });
  });
  robot.close = () => {
    for (const res of hung) res.destroy();
    server.closeAllConnections?.();
    return new Promise((resolve) => server.close(resolve));
  };
  return robot;
}

// --- the service ---------------------------------------------------------------------------------

let dir;
let config;
let clock;
let roster;
let robot;
let service = null;

async function startService() {
  service = await startServer(config, { env: clock.env });
  return service;
}

async function stopService(signal = 'SIGTERM') {
  if (!service) return null;
  const s = service;
  service = null;
  s.child.kill(signal);
  const result = await s.exited;
  assert.doesNotMatch(s.log(), new RegExp(KEY), 'the webhook key is never logged');
  return result;
}

async function outbox() {
  const { stdout } = await run(BIN, ['outbox', 'list', '--config', config]);
  return stdout.trim().split('\n').slice(1).filter((l) => /^\d/.test(l)).map((l) => {
    const [id, kind, period, ledger, gen, part, status] = l.trim().split(/\s+/);
    return { id: Number(id), kind, period, ledger, gen: Number(gen), part, status, line: l };
  });
}

// Moves the clock forward `step` seconds every few milliseconds until `done()` holds.
const advanceUntil = (done, opts = {}) => clock.advanceUntil(done, { log: () => service?.log(), ...opts });

// Until rows matching `match` exist and none is pending or sending. The scheduler queues a
// moment's ledgers one after the other (each drawn with its chart first), so match the last one.
async function untilDelivered(match, what) {
  await advanceUntil(async () => {
    const rows = await outbox();
    const mine = rows.filter(match);
    return mine.length > 0 && rows.every((r) => r.status !== 'pending' && r.status !== 'sending');
  }, { what });
}

// A chart as the robot receives it: a PNG 1080 px wide, at most 2 MB, whose md5 (of the raw
// bytes, before base64) is the one sent with it.
function checkImage(m) {
  const png = Buffer.from(m.image.base64, 'base64');
  assert.equal(png.toString('base64'), m.image.base64, `message ${m.n}: canonical base64`);
  assert.equal(createHash('md5').update(png).digest('hex'), m.image.md5, `message ${m.n}: md5`);
  assert.ok(png.length <= 2 * 1024 * 1024, `message ${m.n}: ${png.length} bytes`);
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  assert.equal(png.readUInt32BE(16), 1080, 'width 1080');
  return png;
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

function checkPosted(messages) {
  for (const m of messages) {
    if (m.msgtype === 'image') {
      checkImage(m);
      continue;
    }
    const bytes = Buffer.byteLength(m.content, 'utf8');
    assert.ok(bytes <= (m.msgtype === 'text' ? 2048 : 4096), `message ${m.n} has ${bytes} bytes`);
    assert.ok(m.url.includes(`key=${KEY}`), 'posted to the configured webhook');
    for (const name of roster.beneficiaries)
      assert.ok(!m.content.includes(name), `unmasked beneficiary ${name} in message ${m.n}`);
    assert.doesNotMatch(m.content, /患病|残疾/, 'no illness or disability in the chat');
  }
}

// The bulletins among `messages` by ledger title, each as its parts' numbers in arrival order.
function bulletinParts(messages, titleRe) {
  return messages.filter((m) => m.msgtype === 'markdown' && titleRe.test(m.content.split('\n')[0]))
    .map((m) => {
      const first = m.content.split('\n')[0];
      const k = first.match(/（(\d+)\/(\d+)）$/);
      return k ? `${k[1]}/${k[2]}` : '1/1';
    });
}

function assertInOrder(parts, label) {
  assert.ok(parts.length >= 1, `${label}: posted`);
  const n = Number(parts[0].split('/')[1]);
  assert.deepEqual(parts, Array.from({ length: n }, (_, i) => `${i + 1}/${n}`), `${label}: each part once, in order`);
}

function noDuplicates(messages) {
  const seen = new Set();
  for (const m of messages) {
    assert.ok(!seen.has(m.raw), `message ${m.n} was accepted twice`);
    seen.add(m.raw);
  }
}

before(async () => {
  dir = scratchDir('bangfu-delivery-');
  config = join(dir, 'config.json');
  clock = fakeClock(join(dir, 'clock'));
  roster = makeRoster();
  robot = fakeRobot();
  await robot.start();
  writeFileSync(config, JSON.stringify({
    listen: '127.0.0.1:0',
    database: join(dir, 'bangfu.db'),
    timezone: 'Asia/Shanghai',
    admins: ['cadre000'],
    wecom: {
      token: TOKEN, encoding_aes_key: AES_KEY, receive_id: '',
      webhook_url: `http://127.0.0.1:${robot.port}/cgi-bin/webhook/send?key=${KEY}`,
    },
  }));
  writeFileSync(join(dir, 'roster.csv'), roster.csv);
  execFileSync(BIN, ['roster', 'import', '--config', config, join(dir, 'roster.csv')]);
  clock.set(at(2027, 1, 15, 10));
});

after(async () => {
  if (service) service.child.kill('SIGKILL');
  await robot.close();
});

test('a new deployment posts nothing for periods before it existed', async () => {
  // Mid-January: December's bulletin (Jan 1) and Q4's review (Jan 3) predate the service.
  await startService();
  const until = clock.now + 3 * 3600;
  await advanceUntil(() => clock.now >= until, { step: 120, what: 'three hours' });
  assert.equal(robot.requests.length, 0);
  assert.deepEqual(await outbox(), []);
});

test('the reminder on the 20th mentions every helper with unvisited pairings, once', async () => {
  clock.set(at(2027, 1, 20, 15, 59));
  await untilDelivered((r) => r.kind === 'reminder', 'the reminder');
  const rows = (await outbox()).filter((r) => r.kind === 'reminder');
  assert.ok(rows.every((r) => r.period === '2027-01-20' && r.status === 'sent'), JSON.stringify(rows));

  // The robot said 45009 twice: the same first message, retried, then accepted.
  assert.equal(robot.requests[0].answer, 45009);
  assert.equal(robot.requests[1].answer, 45009);
  assert.equal(robot.requests[2].raw, robot.requests[0].raw);
  const texts = robot.accepted().filter((m) => m.msgtype === 'text');
  assert.equal(texts.length, rows.length);
  assert.ok(texts.length >= 2, 'the reminder needed several messages');
  checkPosted(texts);
  noDuplicates(texts);
  // Nobody has visited yet: every helper is mentioned exactly once, with a count.
  const mentioned = texts.flatMap((m) => m.mentioned);
  assert.equal(mentioned.length, roster.helpers.size);
  assert.deepEqual(new Set(mentioned), new Set(roster.helpers.keys()));
  for (const m of texts)
    for (const id of m.mentioned)
      assert.match(m.content, new RegExp(`${roster.helpers.get(id)}（[^）]+）未走访 2 个`));
});

test('the monthly bulletins: each part once, in order, within 4096 bytes, masked', async () => {
  const before = robot.requests.length;
  clock.set(at(2027, 2, 1, 8, 59));
  await untilDelivered((r) => r.kind === 'monthly' && r.period === '2027-01' && r.ledger === 'education',
    'January bulletins');
  const posted = robot.accepted().filter((m) => m.n >= before);
  checkPosted(posted);
  noDuplicates(posted);
  const cadre = bulletinParts(posted, /2027年1月.*区直台账/);
  assert.ok(cadre.length >= 2, `the cadre bulletin splits into parts (${cadre})`);
  assertInOrder(cadre, 'cadre');
  assertInOrder(bulletinParts(posted, /2027年1月.*卫生台账/), 'health');
  assertInOrder(bulletinParts(posted, /2027年1月.*教育台账/), 'education');
  // Ledgers in the configured order: cadre, health, education.
  // Ledgers in the configured order, each bulletin's chart right after its text.
  assert.deepEqual(ledgerRuns(posted), ['区直', 'chart', '卫生', 'chart', '教育', 'chart']);
  assert.equal(posted.length, (await outbox()).filter((r) => r.period === '2027-01').length);
});

test('a restart in the middle of sending resumes and posts nothing twice', async () => {
  const before = robot.requests.length;
  // The robot never answers part 2 of February's cadre bulletin; the service is killed then.
  robot.hang = (m) => /2027年2月.*区直台账（2\//.test(m.content.split('\n')[0]);
  clock.set(at(2027, 3, 1, 8, 59));
  await advanceUntil(() => robot.requests.some((m) => m.answer === 'hang'), { what: 'part 2' });
  await stopService('SIGKILL');
  robot.hang = null;
  const hungPart = robot.requests.find((m) => m.answer === 'hang');

  // Back up. The claim on part 2 may belong to a POST still running, so it is waited out, then
  // given up as unknown (maybe posted): never resent. The rest is delivered once each.
  await startService();
  await untilDelivered((r) => r.period === '2027-02' && r.ledger === 'education',
    'February bulletins after the restart');
  const rows = (await outbox()).filter((r) => r.period === '2027-02');
  const unknown = rows.filter((r) => r.status === 'unknown');
  assert.equal(unknown.length, 1, rows.map((r) => r.line).join('\n'));
  assert.equal(unknown[0].ledger, 'cadre');
  assert.match(unknown[0].part, /^2\//);
  assert.ok(rows.filter((r) => r.status !== 'unknown').every((r) => r.status === 'sent'));

  const all = robot.requests.filter((m) => m.n >= before);
  assert.equal(all.filter((m) => m.raw === hungPart.raw).length, 1, 'part 2 went out once only');
  const accepted = all.filter((m) => m.answer === 0);
  checkPosted(all);
  noDuplicates(accepted);
  const cadre = bulletinParts(all, /2027年2月.*区直台账/);
  const n = Number(cadre[0].split('/')[1]);
  assert.deepEqual(cadre, Array.from({ length: n }, (_, i) => `${i + 1}/${n}`), 'cadre parts once, in order');
  assertInOrder(bulletinParts(accepted, /2027年2月.*卫生台账/), 'health');
  assertInOrder(bulletinParts(accepted, /2027年2月.*教育台账/), 'education');
});

test('after downtime the missed bulletins are caught up once; stale reminders are not', async () => {
  clock.set(at(2027, 3, 2, 10));
  await stopService('SIGTERM');
  const before = robot.requests.length;
  // Down through March 20 and 29 (reminders), April 1 (March bulletin), April 3 (Q1 review).
  clock.set(at(2027, 4, 4, 10));
  await startService();
  await untilDelivered((r) => r.kind === 'quarterly' && r.period === '2027-Q1' && r.ledger === 'education',
    'the catch-up');
  let posted = robot.accepted().filter((m) => m.n >= before);
  checkPosted(posted);
  noDuplicates(posted);
  for (const [title, label] of [[/2027年3月.*区直台账/, 'March cadre'], [/2027年3月.*卫生台账/, 'March health'],
    [/2027年3月.*教育台账/, 'March education'], [/2027年第一季度.*区直台账/, 'Q1 cadre'],
    [/2027年第一季度.*卫生台账/, 'Q1 health'], [/2027年第一季度.*教育台账/, 'Q1 education']])
    assertInOrder(bulletinParts(posted, title), label);
  assert.equal(posted.filter((m) => m.msgtype === 'text').length, 0, 'no stale March reminders');
  assert.deepEqual(ledgerRuns(posted), ['区直', 'chart', '卫生', 'chart', '教育', 'chart',
    '区直', 'chart', '卫生', 'chart', '教育', 'chart'], 'March, then Q1, each with its chart');
  const rows = await outbox();
  assert.deepEqual([...new Set(rows.filter((r) => r.kind !== 'reminder').map((r) => r.period))],
    ['2027-01', '2027-02', '2027-03', '2027-Q1']);

  // Restarted again: nothing is posted a second time.
  const count = robot.requests.length;
  await stopService('SIGTERM');
  await startService();
  const until = clock.now + 3600;
  await advanceUntil(() => clock.now >= until, { step: 120, what: 'an hour' });
  assert.equal(robot.requests.length, count);
  posted = robot.accepted().filter((m) => m.n >= before);
  noDuplicates(posted);
  const log = service.log();
  const { code } = await stopService('SIGTERM');
  assert.equal(code, 0, log);
});

test('bangfu bulletin --post: once per period unless --force; usage errors exit 2', async () => {
  const env = { ...process.env, ...clock.env };
  const args = ['bulletin', '--config', config, '--kind', 'monthly', '--period', '2027-03',
    '--ledger', 'health', '--post'];
  const before = robot.requests.length;
  const again = await run(BIN, args, { env });
  assert.match(again.stderr, /already queued as generation 1/);
  assert.match(again.stdout, /2027年3月.*卫生台账/);
  assert.equal(robot.requests.length, before, 'posted once already: nothing new');

  const forced = await run(BIN, [...args, '--force'], { env });
  assert.match(forced.stderr, /generation 2/);
  const posted = robot.accepted().filter((m) => m.n >= before);
  assert.ok(posted.length >= 1);
  checkPosted(posted);
  assertInOrder(bulletinParts(posted, /2027年3月.*卫生台账/), 'forced health');

  assert.deepEqual(ledgerRuns(posted), ['卫生', 'chart'], 'the chart again with --force');

  // --chart-out writes the PNGs and posts nothing.
  const count = robot.requests.length;
  const out = join(dir, 'charts');
  const wrote = await run(BIN, ['bulletin', '--config', config, '--kind', 'quarterly', '--period',
    '2027-Q1', '--chart-out', out], { env });
  assert.equal(robot.requests.length, count);
  assert.deepEqual(readdirSync(out).sort(), ['2027-Q1-quarterly-cadre.png',
    '2027-Q1-quarterly-education.png', '2027-Q1-quarterly-health.png']);
  assert.match(wrote.stderr, /wrote .*2027-Q1-quarterly-cadre\.png/);
  const png = readFileSync(join(out, '2027-Q1-quarterly-cadre.png'));
  assert.equal(png.readUInt32BE(16), 1080);
  // The same picture as the one posted with the Q1 review.
  const postedQ1 = robot.accepted().filter((m) => m.msgtype === 'image')
    .map((m) => m.image.md5);
  assert.ok(postedQ1.includes(createHash('md5').update(png).digest('hex')), 'same chart as posted');

  for (const bad of [['--kind', 'monthly', '--period', '2027-Q1'], ['--kind', 'quarterly', '--period', '2027-03'],
    ['--kind', 'monthly', '--period', '2027-04', '--post']]) {
    const r = await run(BIN, ['bulletin', '--config', config, ...bad], { env }).catch((e) => e);
    assert.equal(r.code, 2, `${bad.join(' ')} → ${r.stderr}`);
  }
});
