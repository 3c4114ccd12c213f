// Reliability and security of the running service (issue 5, SECURITY.md): no acknowledged
// check-in is lost when the process is killed mid-load, replays and floods are refused, slow
// clients cannot starve the workers, and no secret reaches the log. Everything runs against the
// real binary on 127.0.0.1 and OS-assigned ports; every wait is bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { getSignature, encrypt } from '@wecom/crypto';
import {
  BIN, TOKEN, AES_KEY, rosterOf, householdsOf, makeDistrictWith, startServer, callback,
  textMessage, post, openReply, checkin, ledgerRows, sqlite, shanghaiMonth, sleep,
} from './harness.mjs';

const run = promisify(execFile);

// A webhook key that must never be logged. The URL points at a closed loopback port, so any
// delivery attempt fails (and its error is logged, redacted).
const WEBHOOK_KEY = 'a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607';
const WEBHOOK_URL = `http://127.0.0.1:9/cgi-bin/webhook/send?key=${WEBHOOK_KEY}`;

const servers = [];   // every server started, for clean-up and for the log check
const outputs = [];   // every CLI output, for the log check
const figures = {};   // reported at the end (SECURITY.md quotes them)

async function start(config) {
  const s = await startServer(config);
  servers.push(s);
  return s;
}

async function cli(args) {
  const { stdout, stderr } = await run(BIN, args);
  outputs.push(stdout, stderr);
  return stdout;
}

after(() => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  console.log(`# figures ${JSON.stringify(figures)}`);
});

// One HTTP request on a connection of its own (no pooling), so a flood really opens that many
// connections. Resolves { status, headers, body } or { error }.
function rawPost(port, cb, timeoutMs = 20000) {
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: `/wecom/callback?${cb.query}`, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(cb.body) },
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ error }));
    req.end(cb.body);
  });
}

function countByMsgid(rows) {
  const n = new Map();
  for (const r of rows) n.set(r.msgid, (n.get(r.msgid) || 0) + 1);
  return n;
}

test('no acknowledged check-in is lost when the server is killed mid-load', async (t) => {
  const roster = rosterOf(16, 2);
  const d = makeDistrictWith({ limits: { per_sender_per_minute: 0 }, wecom: { webhook_url: WEBHOOK_URL } }, roster);
  const helpers = Array.from({ length: 16 }, (_, h) => `h${String(h).padStart(3, '0')}`);
  const textFor = (i) => {
    const hh = householdsOf(roster, helpers[i % helpers.length])[Math.floor(i / helpers.length) % 2];
    return `@帮扶助手 走访 ${hh.head}户 今天 第${i}次 送米面油`;
  };
  let s1 = await start(d.config);

  // A check-in whose reply is lost: the request is sent whole, then the connection is dropped
  // before the answer. It is committed all the same (wait for it in the database).
  const lost = callback(textMessage('lost-1', helpers[0], textFor(0)));
  await new Promise((resolve, reject) => {
    const sock = net.connect(s1.port, '127.0.0.1', () => {
      sock.end(`POST /wecom/callback?${lost.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(lost.body)}\r\n\r\n${lost.body}`,
      () => { sock.destroy(); resolve(); });
    });
    sock.on('error', reject);
  });
  for (let i = 0; i < 100 && sqlite(d.database, "SELECT count(*) FROM checkins WHERE msgid = 'lost-1'") !== '1'; i++) await sleep(50);
  assert.equal(sqlite(d.database, "SELECT count(*) FROM checkins WHERE msgid = 'lost-1'"), '1');

  // The load: 8 concurrent senders, distinct msgids, until the kill.
  const sent = new Set();
  const acked = new Map();  // msgid → reply content
  let next = 0;
  let killed = false;
  const killAt = 300;  // acknowledged check-ins before the SIGKILL
  const worker = async () => {
    for (;;) {
      const i = next++;
      const msgid = `load-${i}`;
      sent.add(msgid);
      try {
        const r = await checkin(s1.base, msgid, helpers[i % helpers.length], textFor(i));
        if (r.status === 200 && /已记下/.test(r.content)) acked.set(msgid, r.content);
        // Killed from the reply path, not a timer: the server is then still busy with the
        // other connections' requests (a timer fired after it had answered them all).
        if (acked.size >= killAt && !killed) {
          killed = true;
          s1.child.kill('SIGKILL');
        }
      } catch {
        if (killed) return;  // the connection died with the server
      }
      if (killed) return;
    }
  };
  const load = Array.from({ length: 32 }, worker);

  // A backup while the load runs: a consistent copy that passes its own integrity check.
  await sleep(400);
  const backupFile = join(d.dir, 'backup.db');
  const backupOut = await cli(['backup', '--config', d.config, backupFile]);
  assert.match(backupOut, /integrity ok/);
  assert.equal(sqlite(backupFile, 'PRAGMA integrity_check'), 'ok');
  const backedUp = Number(sqlite(backupFile, 'SELECT count(*) FROM checkins'));
  assert.ok(backedUp > 0, 'the backup holds check-ins');

  const deadline = Date.now() + 10000;
  while (!killed && Date.now() < deadline) await sleep(20);
  if (!killed) {
    killed = true;
    s1.child.kill('SIGKILL');
  }
  await Promise.all(load);
  const { signal } = await s1.exited;
  assert.equal(signal, 'SIGKILL');
  const inFlight = [...sent].filter((m) => !acked.has(m));

  // Restart on the same database.
  const s2 = await start(d.config);
  const before = countByMsgid(ledgerRows(d.config, shanghaiMonth()));
  for (const msgid of acked.keys()) assert.equal(before.get(msgid), 1, `acknowledged ${msgid} is in the ledger once`);
  for (const [msgid, n] of before) assert.equal(n, 1, `${msgid} is recorded once`);
  assert.equal(sqlite(d.database, 'PRAGMA integrity_check'), 'ok');
  const committedUnacked = inFlight.filter((m) => before.has(m)).length;

  // WeCom retries the check-in whose reply was lost: recognised by msgid, same answer, nothing new.
  const stored = sqlite(d.database, "SELECT reply FROM inbound WHERE msgid = 'lost-1'");
  const retryLost = await checkin(s2.base, 'lost-1', helpers[0], textFor(0));
  assert.equal(retryLost.status, 200);
  assert.match(retryLost.content, /已记下/);
  assert.equal(retryLost.content.trim(), stored.trim());
  // A retry of an acknowledged check-in gets the answer it got before the kill.
  const [someAcked, firstReply] = acked.entries().next().value;
  const i = Number(someAcked.slice('load-'.length));
  assert.equal((await checkin(s2.base, someAcked, helpers[i % helpers.length], textFor(i))).content, firstReply);
  // Retries of everything that was in flight at the kill: each ends up recorded exactly once.
  for (const msgid of inFlight) {
    const k = Number(msgid.slice('load-'.length));
    const r = await checkin(s2.base, msgid, helpers[k % helpers.length], textFor(k));
    assert.equal(r.status, 200, msgid);
  }
  const afterRetries = countByMsgid(ledgerRows(d.config, shanghaiMonth()));
  for (const msgid of [...sent, 'lost-1']) assert.equal(afterRetries.get(msgid), 1, `${msgid} once after retries`);
  assert.equal(afterRetries.size, sent.size + 1, 'nothing else recorded');

  // `bangfu check` on the live database.
  const checkOut = await cli(['check', '--config', d.config]);
  assert.match(checkOut, /all checks passed/);
  assert.match(checkOut, /integrity ok/);

  Object.assign(figures, {
    kill_sent: sent.size, kill_acked: acked.size, kill_in_flight: inFlight.length,
    kill_committed_unacked: committedUnacked, kill_lost: 0, backup_checkins: backedUp,
  });
  t.diagnostic(`sent ${sent.size}, acknowledged ${acked.size}, in flight at SIGKILL ${inFlight.length} ` +
    `(${committedUnacked} committed without a reply), lost 0`);
  s2.child.kill('SIGTERM');
  assert.equal((await s2.exited).code, 0);
});

test('the same (timestamp, nonce) with a different body is refused', async () => {
  const d = makeDistrictWith();
  const s = await start(d.config);
  const first = callback(textMessage('replay-1', 'zhangwei', '@帮扶助手 走访 王秀英户 今天'));
  const res = await post(s.base, first);
  assert.equal(res.status, 200);
  const reply = openReply(await res.json(), first.nonce);

  // A correctly signed request reusing the timestamp and nonce with another body.
  const enc = encrypt(AES_KEY, JSON.stringify(textMessage('replay-2', 'zhangwei', '@帮扶助手 走访 李德明户 今天')), '');
  const q = new URLSearchParams({
    msg_signature: getSignature(TOKEN, first.timestamp, first.nonce, enc),
    timestamp: String(first.timestamp), nonce: first.nonce,
  });
  const swapped = await fetch(`${s.base}/wecom/callback?${q}`, { method: 'POST', body: JSON.stringify({ encrypt: enc }) });
  assert.equal(swapped.status, 401);
  assert.equal(await swapped.text(), 'unauthorized\n');

  // The identical request again is WeCom's own retry: the same answer, nothing new.
  const again = await post(s.base, first);
  assert.equal(again.status, 200);
  assert.equal(openReply(await again.json(), first.nonce).stream.content, reply.stream.content);
  const rows = ledgerRows(d.config, shanghaiMonth());
  assert.equal(rows.filter((r) => r.msgid === 'replay-1').length, 1);
  assert.equal(rows.filter((r) => r.msgid === 'replay-2').length, 0);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('admin-only commands are refused to everyone not in admins', async () => {
  const d = makeDistrictWith();  // admins: ['zhangwei']
  const s = await start(d.config);
  for (const [user, text] of [['dr_zhao', '@帮扶助手 通报 2026-10'], ['stranger', '@帮扶助手 点评 2026Q3']]) {
    const r = await checkin(s.base, `admin-${user}`, user, text);
    assert.equal(r.status, 200);
    assert.match(r.content, /只有管理员|名册/, `${user}: ${r.content}`);
  }
  const r = await checkin(s.base, 'admin-ok', 'zhangwei', '@帮扶助手 通报 2026-10');
  assert.doesNotMatch(r.content, /只有管理员/);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('over the per-sender rate limit: a polite reply, kept raw, no check-in', async () => {
  const d = makeDistrictWith({ limits: { per_sender_per_minute: 5 } });
  const s = await start(d.config);
  const replies = [];
  for (let i = 0; i < 7; i++) {
    const r = await checkin(s.base, `rl-${i}`, 'zhangwei', `@帮扶助手 走访 王秀英户 今天 第${i}条`);
    assert.equal(r.status, 200);
    replies.push(r.content);
  }
  for (let i = 0; i < 5; i++) assert.match(replies[i], /已记下/, `message ${i} within the limit`);
  for (let i = 5; i < 7; i++) {
    assert.match(replies[i], /发得太快了/, `message ${i} over the limit`);
    assert.match(replies[i], /已收到存档/);
  }
  // Another sender is not affected.
  assert.match((await checkin(s.base, 'rl-other', 'dr_zhao', '@帮扶助手 上门服务 赵桂兰 测血压')).content, /已记下/);
  // The excess is stored raw, with the text as sent, and recorded nothing.
  assert.equal(sqlite(d.database, "SELECT count(*) FROM inbound WHERE msgid IN ('rl-5','rl-6') AND text LIKE '%走访 王秀英户%'"), '2');
  const rows = ledgerRows(d.config, shanghaiMonth());
  assert.deepEqual(rows.filter((r) => r.msgid.startsWith('rl-')).map((r) => r.msgid).sort(),
    ['rl-0', 'rl-1', 'rl-2', 'rl-3', 'rl-4', 'rl-other']);
  // A retry of a limited message gets the same polite answer.
  assert.equal((await checkin(s.base, 'rl-5', 'zhangwei', '@帮扶助手 走访 王秀英户 今天 第5条')).content, replies[5]);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a flood beyond the queue is answered 503, bounded in count and time', async (t) => {
  const roster = rosterOf(8, 2);
  const d = makeDistrictWith({ threads: 1, limits: { per_sender_per_minute: 0, max_queue: 2 } }, roster);
  const s = await start(d.config);
  const N = 300;
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: N }, (_, i) => {
    const helper = `h00${i % 8}`;
    const hh = householdsOf(roster, helper)[0];
    return rawPost(s.port, callback(textMessage(`flood-${i}`, helper, `@帮扶助手 走访 ${hh.head}户 今天`)))
      .then((r) => ({ ...r, msgid: `flood-${i}` }));
  }));
  const elapsed = Date.now() - started;
  const ok = results.filter((r) => r.status === 200);
  const busy = results.filter((r) => r.status === 503);
  const failed = results.filter((r) => r.error);
  for (const r of failed.slice(0, 5)) t.diagnostic(`connection error: ${r.error.code || r.error.message}`);
  t.diagnostic(`${N} concurrent: ${ok.length} answered 200, ${busy.length} answered 503, ` +
    `${failed.length} connection errors, in ${elapsed} ms`);
  Object.assign(figures, { flood_requests: N, flood_200: ok.length, flood_503: busy.length, flood_errors: failed.length, flood_ms: elapsed });
  assert.ok(elapsed < 30000, `the flood was answered in ${elapsed} ms`);
  assert.equal(ok.length + busy.length + failed.length, N);
  assert.ok(busy.length > 0, 'some requests were refused with 503');
  assert.ok(ok.length > 0, 'some requests were served');
  assert.ok(failed.length <= N / 10, `few connection errors (${failed.length})`);
  for (const r of busy) assert.equal(r.headers['retry-after'], '1');
  // Every check-in answered 200 is stored; none of the refused ones is.
  const stored = countByMsgid(ledgerRows(d.config, shanghaiMonth()));
  for (const r of ok) assert.equal(stored.get(r.msgid), 1, r.msgid);
  for (const r of busy) assert.equal(stored.get(r.msgid), undefined, r.msgid);
  // Serving normally right after.
  const hh = householdsOf(roster, 'h000')[1];
  const t0 = Date.now();
  assert.match((await checkin(s.base, 'after-flood', 'h000', `@帮扶助手 走访 ${hh.head}户 今天`)).content, /已记下/);
  assert.ok(Date.now() - t0 < 3000);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('slow clients (slowloris) do not stop a normal request', async (t) => {
  const d = makeDistrictWith({ threads: 2 });
  const s = await start(d.config);
  const head = 'POST /wecom/callback?msg_signature=0000&timestamp=1&nonce=abc HTTP/1.1\r\n' +
    'Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: ' + 'x'.repeat(200) + '\r\n';
  const SLOW = 64;
  const closedAt = [];
  const opened = Date.now();
  const socks = await Promise.all(Array.from({ length: SLOW }, () => new Promise((resolve) => {
    const sock = net.connect(s.port, '127.0.0.1', () => resolve(sock));
    sock.on('error', () => {});
    sock.on('close', () => closedAt.push(Date.now() - opened));
  })));
  // Each sends its head one byte every 50 ms and never finishes.
  let pos = 0;
  const drip = setInterval(() => {
    for (const sock of socks) if (!sock.destroyed) sock.write(head[pos % head.length]);
    pos++;
  }, 50);
  try {
    await sleep(1000);
    const t0 = Date.now();
    const r = await checkin(s.base, 'slowloris-normal', 'zhangwei', '@帮扶助手 走访 王秀英户 今天');
    const took = Date.now() - t0;
    t.diagnostic(`normal check-in answered in ${took} ms beside ${SLOW} slow connections`);
    Object.assign(figures, { slowloris_connections: SLOW, slowloris_normal_ms: took });
    assert.equal(r.status, 200);
    assert.match(r.content, /已记下/);
    assert.ok(took < 3000, `answered in ${took} ms`);
    assert.equal((await fetch(`${s.base}/healthz`)).status, 200);
    // The server drops the slow connections by itself (5 s from their first byte).
    const until = Date.now() + 15000;
    while (closedAt.length < SLOW && Date.now() < until) await sleep(100);
    assert.equal(closedAt.length, SLOW, `every slow connection was closed by the server: ${JSON.stringify(closedAt)}\n${s.log().split('\n').filter((l) => l.includes('http_limits')).join('\n')}`);
    t.diagnostic(`slow connections closed by the server after ${Math.min(...closedAt)}–${Math.max(...closedAt)} ms`);
  } finally {
    clearInterval(drip);
    for (const sock of socks) sock.destroy();
  }
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

// Sends raw bytes on a fresh connection and resolves with the status line of the answer as soon
// as it arrives (or what came before the connection closed, or a timeout note after `ms`).
function rawExchange(port, bytes, ms = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    let got = '';
    const done = (result) => { clearTimeout(timer); sock.destroy(); resolve(result); };
    const timer = setTimeout(() => done(`timeout after ${ms} ms: ${got}`), ms);
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) done(got.split('\r\n')[0]);
    });
    sock.on('error', () => {});
    sock.on('close', () => done(got.split('\r\n')[0]));
  });
}

test('oversized heads and declared bodies are refused before they are read', async () => {
  const d = makeDistrictWith();
  const s = await start(d.config);
  const bigHead = `POST /wecom/callback HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`;
  assert.equal(await rawExchange(s.port, bigHead), 'HTTP/1.1 431 Request Header Fields Too Large');
  // A declared 1 GB body is refused at once, without waiting for it.
  const t0 = Date.now();
  const hugeBody = 'POST /wecom/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{"encrypt":"';
  assert.equal(await rawExchange(s.port, hugeBody), 'HTTP/1.1 413 Payload Too Large');
  assert.ok(Date.now() - t0 < 3000);
  // Garbage that is not HTTP at all gets a 400 and changes nothing.
  assert.match(await rawExchange(s.port, 'HELLO\r\n\r\n'), /^HTTP\/1\.1 400/);
  assert.equal((await fetch(`${s.base}/healthz`)).status, 200);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('no secret and no message text in any log line; every request line has its id', () => {
  const text = servers.map((s) => s.log()).join('') + outputs.join('');
  assert.ok(text.length > 1000, 'the run produced logs');
  for (const [name, secret] of [['token', TOKEN], ['AES key', AES_KEY], ['webhook key', WEBHOOK_KEY]])
    assert.ok(!text.includes(secret), `the ${name} appears in the logs`);
  // Under the sanitizer builds (scripts/sanitize.sh) a report in any server's stderr fails here,
  // the SIGKILLed server's included.
  assert.doesNotMatch(text, /ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:/);
  // Decrypted bodies stay out too: the check-in texts all contain 走访.
  assert.ok(!servers.some((s) => s.log().includes('走访')), 'message text appears in the server log');
  const requestLines = servers.flatMap((s) => s.log().split('\n'))
    .filter((l) => /event=(http|message|callback_rejected|rate_limited|non_text|event|request_failed) /.test(l));
  assert.ok(requestLines.length > 100);
  for (const l of requestLines) assert.match(l, / rid=[0-9a-f]{8}-\d+ /, l);
  figures.log_lines_checked = servers.reduce((n, s) => n + s.log().split('\n').length, 0);
});
