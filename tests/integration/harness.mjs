// Starts the real bangfu binary on a temporary database and an OS-assigned port, and speaks to
// it as WeCom's servers would, using @wecom/crypto (an independent implementation of the scheme).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { getSignature, encrypt, decrypt } from '@wecom/crypto';

export const BIN = process.env.BANGFU_BIN;
if (!BIN) throw new Error('set BANGFU_BIN to the bangfu executable');

export const TOKEN = 'bangfuTestToken7';
export const AES_KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';

export const ROSTER = [
  '帮扶人ID,帮扶人,手机,台账,单位,户编号,户主,帮扶对象,对象类别,村居,街道,结对日期',
  'zhangwei,张伟,13800000001,区直,区财政局,H001,王秀英,,,张庄村,东街道,',
  'zhangwei,张伟,13800000001,区直,区财政局,H002,李德明,,,李庄村,东街道,',
  'dr_zhao,赵医生,13800000002,卫生,区人民医院,H003,赵桂兰,赵桂兰,患病,张庄村,东街道,',
  'teacher_liu,刘老师,13800000003,教育,区实验中学,H004,刘建国,刘洋,学生,河湾村,西街道,',
].join('\n') + '\n';

// A scratch folder under the system's temporary directory, removed when this test file's process
// ends — unless a test failed (its databases and logs are kept to look at, and their folders
// printed) or BANGFU_KEEP_TMP=1. Before, every run of the suite left its folders in /tmp.
const scratch = [];
export function scratchDir(prefix = 'bangfu-it-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}
process.on('exit', (code) => {
  if (code !== 0 || process.env.BANGFU_KEEP_TMP === '1') {
    if (scratch.length) console.error(`scratch folders kept: ${scratch.join(' ')}`);
    return;
  }
  for (const dir of scratch) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      console.error(`could not remove ${dir}: ${e.message}`);  // the tests' outcome stands
    }
  }
});

export function makeDistrict() {
  const dir = scratchDir();
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    listen: '127.0.0.1:0',
    database: join(dir, 'bangfu.db'),
    timezone: 'Asia/Shanghai',
    bot_name: '帮扶助手',
    admins: ['zhangwei'],
    wecom: { token: TOKEN, encoding_aes_key: AES_KEY, receive_id: '', webhook_url: '' },
  }));
  writeFileSync(join(dir, 'roster.csv'), ROSTER);
  execFileSync(BIN, ['roster', 'import', '--config', config, join(dir, 'roster.csv')]);
  return { dir, config };
}

// `bangfu serve --config CONFIG` with ENV added to this process's environment; resolves once it
// listens.
export async function startServer(config, { env = {} } = {}) {
  const child = spawn(BIN, ['serve', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, port, base: `http://127.0.0.1:${port}`, log: () => log, exited };
}

export function nowSeconds() { return Math.floor(Date.now() / 1000); }

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Unix seconds of a Shanghai (+08:00) wall-clock time.
export const shanghai = (y, mo, d, h = 0, mi = 0, s = 0) => Date.UTC(y, mo - 1, d, h - 8, mi, s) / 1000;

// The clock of a service or command run with `env` (BANGFU_FAKE_CLOCK_FILE=FILE, a hook for tests
// only): the scheduler reads its time from the file. set() writes it whole (by rename, so the
// service never reads half of it); advanceUntil() moves it on by STEP seconds every 25 ms until
// done() holds, failing after LIMIT ms with the service's LOG.
export function fakeClock(file) {
  const clock = {
    file,
    env: { BANGFU_FAKE_CLOCK_FILE: file },
    now: 0,
    set(t) {
      clock.now = t;
      writeFileSync(`${file}.tmp`, `${t}\n`);
      renameSync(`${file}.tmp`, file);
    },
    async advanceUntil(done, { step = 30, limit = 20000, what = 'condition', log = () => '' } = {}) {
      const deadline = Date.now() + limit;
      for (;;) {
        if (await done()) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${log()}`);
        clock.set(clock.now + step);
        await sleep(25);
      }
    },
  };
  return clock;
}

export function nonce() { return randomBytes(6).toString('hex'); }

// A signed, encrypted AI-bot callback carrying `msg` (an object), as WeCom sends it.
export function callback(msg, { timestamp = nowSeconds(), n = nonce() } = {}) {
  const enc = encrypt(AES_KEY, JSON.stringify(msg), '');
  const sig = getSignature(TOKEN, timestamp, n, enc);
  const query = new URLSearchParams({ msg_signature: sig, timestamp: String(timestamp), nonce: n });
  return { query, body: JSON.stringify({ encrypt: enc }), sig, timestamp, nonce: n, enc };
}

export function textMessage(msgid, userid, content) {
  return {
    msgid, aibotid: 'AIBOT', chatid: 'CHAT1', chattype: 'group',
    from: { userid }, response_url: 'https://example.invalid/resp', msgtype: 'text',
    text: { content },
  };
}

// Sent once more when the request could not be sent at all: a kept-alive connection that the
// server closed at its idle deadline (5 s) while this process was blocked in a spawnSync of the
// CLI is still in fetch's pool, and the POST goes out on it ("fetch failed"). As WeCom does, the
// same message is sent again; the server records a msgid once, so the retry is safe. A server
// that is gone fails the second attempt too.
export async function post(base, cb) {
  const send = () => fetch(`${base}/wecom/callback?${cb.query}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: cb.body,
  });
  try {
    return await send();
  } catch (e) {
    if (!(e instanceof TypeError) || e.message !== 'fetch failed') throw e;
    return send();
  }
}

// Verifies and opens the encrypted passive reply; returns the plaintext object.
export function openReply(json, expectedNonce) {
  const sig = getSignature(TOKEN, json.timestamp, json.nonce, json.encrypt);
  if (sig !== json.msgsignature) throw new Error('reply signature does not verify');
  if (json.nonce !== expectedNonce) throw new Error('reply nonce differs from the callback nonce');
  const { message, id } = decrypt(AES_KEY, json.encrypt);
  if (id !== '') throw new Error(`reply receiveid ${JSON.stringify(id)} is not empty`);
  return JSON.parse(message);
}

export function ledger(config, month) {
  const out = execFileSync(BIN, ['ledger', 'export', '--config', config, '--month', month,
    '--format', 'json']);
  return JSON.parse(out.toString());
}

// --- added for the durability and soak tests ---------------------------------------------------

// A roster of `helpers` district cadres (userids h000, h001, …), each paired with `each`
// households (heads named 户主<helper>-<k> in the pattern below, distinct across the roster).
export function rosterOf(helpers, each = 2) {
  const surnames = '王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗';
  const given = '秀德建国玉桂志明海兰英华军平文';
  const lines = [ROSTER.split('\n')[0]];
  let n = 0;
  for (let h = 0; h < helpers; h++) {
    const id = `h${String(h).padStart(3, '0')}`;
    for (let k = 0; k < each; k++, n++) {
      const head = surnames[n % surnames.length] + given[Math.floor(n / surnames.length) % given.length] +
        given[(n * 7 + 3) % given.length];
      lines.push(`${id},帮扶人${h},1380000${String(h).padStart(4, '0')},区直,区财政局,S${String(n).padStart(4, '0')},${head},,,张庄村,东街道,`);
    }
  }
  return lines.join('\n') + '\n';
}

// The households of one helper in a roster made by rosterOf: [{ id, head }].
export function householdsOf(roster, helper) {
  return roster.split('\n').slice(1).filter((l) => l.startsWith(`${helper},`))
    .map((l) => { const c = l.split(','); return { id: c[5], head: c[6] }; });
}

// Like makeDistrict, with the config's keys overridden (shallowly merged, `wecom` merged one
// level deeper) and an optional roster text.
export function makeDistrictWith(overrides = {}, roster = ROSTER) {
  const dir = scratchDir();
  const config = join(dir, 'config.json');
  const { wecom = {}, ...rest } = overrides;
  writeFileSync(config, JSON.stringify({
    listen: '127.0.0.1:0',
    database: join(dir, 'bangfu.db'),
    timezone: 'Asia/Shanghai',
    bot_name: '帮扶助手',
    admins: ['zhangwei'],
    wecom: { token: TOKEN, encoding_aes_key: AES_KEY, receive_id: '', webhook_url: '', ...wecom },
    ...rest,
  }));
  writeFileSync(join(dir, 'roster.csv'), roster);
  execFileSync(BIN, ['roster', 'import', '--config', config, join(dir, 'roster.csv')]);
  return { dir, config, database: join(dir, 'bangfu.db') };
}

// Runs SQL on a database file with the sqlite3 command-line shell; returns its output, trimmed.
export function sqlite(database, sql) {
  return execFileSync('sqlite3', ['-bail', database, sql]).toString().trim();
}

// The resident set size of a process in KiB, from /proc/PID/status.
export function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

// Posts a check-in and opens the reply: { status, content } (content null unless 200).
export async function checkin(base, msgid, userid, text, opts = {}) {
  const cb = callback(textMessage(msgid, userid, text), opts);
  const res = await post(base, cb);
  if (res.status !== 200) { await res.arrayBuffer(); return { status: res.status, content: null }; }
  const reply = openReply(await res.json(), cb.nonce);
  return { status: 200, content: reply.stream ? reply.stream.content : JSON.stringify(reply) };
}

// This month in Asia/Shanghai (the service's zone), as YYYY-MM.
export function shanghaiMonth() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 7);
}

// The month's ledger as parsed JSON, however large (ledger() keeps execFileSync's 1 MiB limit).
export function ledgerRows(config, month) {
  const out = execFileSync(BIN, ['ledger', 'export', '--config', config, '--month', month,
    '--format', 'json'], { maxBuffer: 1 << 30 });
  return JSON.parse(out.toString());
}
