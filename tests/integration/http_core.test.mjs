// The HTTP core (bot/http, issue 11) against the real binary on 127.0.0.1: requests WeCom never
// sends are refused at once (411, 417, 501), a half-sent header costs no CPU, slow and chunked
// POSTs do not hold up a check-in, a flood of idle connections does not lock one out, keep-alive
// and pipelined requests are answered in order, and connections cut at their deadlines are
// counted in the log. Nothing here is timed to a machine's speed: CPU is compared with a whole
// core, delays with the same request made unloaded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import {
  makeDistrictWith, startServer, callback, textMessage, openReply, checkin, sleep,
} from './harness.mjs';

const servers = [];
after(() => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
});
async function start(overrides = {}) {
  const d = makeDistrictWith(overrides);
  const s = await startServer(d.config);
  servers.push(s);
  return s;
}
async function stop(s) {
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
}


// Opens a connection, writes `bytes`, and collects what comes back until the server closes or
// `ms` pass. Resolves { data, closedByServer, ms }.
function exchange(port, bytes, ms = 8000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    let data = '';
    let settled = false;
    const done = (closedByServer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closedByServer, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('data', (d) => { data += d; });
    sock.on('error', () => {});
    sock.on('end', () => done(true));
    sock.on('close', () => done(true));
  });
}

const statusLine = (data) => data.split('\r\n')[0];

// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

test('requests WeCom never sends are refused before any handler: 411, 501, 417', async () => {
  const s = await start();
  const q = 'msg_signature=0&timestamp=1&nonce=a';
  const noLength = `POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n`;
  const chunked = `POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n`;
  const gzipped = `POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd`;
  const expect = `POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n`;
  const cases = [
    [noLength, 'HTTP/1.1 411 Length Required'],
    [chunked, 'HTTP/1.1 501 Not Implemented'],
    [gzipped, 'HTTP/1.1 501 Not Implemented'],
    [expect, 'HTTP/1.1 417 Expectation Failed'],
  ];
  for (const [bytes, want] of cases) {
    const r = await exchange(s.port, bytes);
    assert.equal(statusLine(r.data), want, JSON.stringify(bytes.slice(0, 80)));
    assert.match(r.data, /\r\nConnection: close\r\n/i);
    assert.ok(r.closedByServer, 'the server closes after a refusal');
    assert.ok(r.ms < 3000, `answered in ${r.ms} ms, without waiting for a body`);
  }
  // Nothing reached the handler: no request line, no callback_rejected.
  assert.doesNotMatch(s.log(), /event=callback_rejected/);
  await stop(s);
  assert.match(s.log(), /event=http_limits .*unsupported_411_417_501=4 /);
});

test('a half-sent header costs no CPU, and is cut at its deadline, counted and logged', async (t) => {
  const s = await start();
  const sock = net.connect(s.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  let closedAt = null;
  const opened = Date.now();
  sock.on('error', () => {});
  sock.on('close', () => { closedAt = Date.now() - opened; });
  sock.write('POST /wecom/callback?msg_signature=0&timestamp=1&nonce=a HTTP/1.1\r\nHost: x\r\nContent-Le');
  await sleep(200);
  const c0 = cpuTicks(s.child.pid);
  const w0 = Date.now();
  await sleep(2000);
  const cores = (cpuTicks(s.child.pid) - c0) / TICKS_PER_SECOND / ((Date.now() - w0) / 1000);
  t.diagnostic(`server CPU beside a half-sent header: ${(cores * 100).toFixed(1)}% of a core`);
  assert.ok(cores < 0.05, `the server used ${(cores * 100).toFixed(1)}% of a core while waiting`);
  // The header deadline is 5 s from the first byte.
  const until = Date.now() + 10000;
  while (closedAt === null && Date.now() < until) await sleep(50);
  assert.ok(closedAt !== null, 'the server closed the connection');
  t.diagnostic(`closed by the server after ${closedAt} ms`);
  assert.ok(closedAt >= 4500, `closed after ${closedAt} ms, not before the deadline`);
  await stop(s);
  assert.match(s.log(), /event=http_limits .*slow_closed=1 /);
});

test('twelve slow or chunked POSTs do not delay a normal check-in', async (t) => {
  // threads: 8 (the default) — the old core gave each of these a worker for 5 s.
  const s = await start();
  // Five check-ins at once, each timed: the old core held every one of them until a worker's 5 s
  // read timeout ended; the median ignores one request's jitter on a busy machine.
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const timed = async (tag) => Promise.all(Array.from({ length: 5 }, async (_, i) => {
    const t0 = Date.now();
    const r = await checkin(s.base, `${tag}-${i}`, 'zhangwei', '@帮扶助手 走访 王秀英户 今天');
    assert.equal(r.status, 200);
    return Date.now() - t0;
  }));
  await timed('warm');
  const quiet = await timed('quiet');
  // Four declare a body and send a little of it, four send a chunked body slowly, four send no
  // length at all; all keep their connections open.
  const q = 'msg_signature=0&timestamp=1&nonce=a';
  const heads = [
    ...Array(4).fill(`POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n{"encrypt":"`),
    ...Array(4).fill(`POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n`),
    ...Array(4).fill(`POST /wecom/callback?${q} HTTP/1.1\r\nHost: x\r\n\r\n{"encrypt":"`),
  ];
  const socks = await Promise.all(heads.map((h) => new Promise((resolve) => {
    const sock = net.connect(s.port, '127.0.0.1', () => { sock.write(h); resolve(sock); });
    sock.on('error', () => {});
  })));
  const drip = setInterval(() => { for (const sock of socks) if (!sock.destroyed) sock.write('A'); }, 100);
  try {
    await sleep(300);
    const busy = await timed('beside');
    // 1 s leaves room for a loaded CI machine running this under TSan, while failing on the old
    // core's 5 s.
    const delay = median(busy) - median(quiet);
    t.diagnostic(`check-in ms, alone: ${quiet.join(' ')}; beside 12 slow POSTs: ${busy.join(' ')}; median delay ${delay} ms`);
    assert.ok(delay < 1000, `a check-in beside slow POSTs took ${delay} ms longer`);
    const h0 = Date.now();
    assert.equal((await fetch(`${s.base}/healthz`)).status, 200);
    assert.ok(Date.now() - h0 < 1000);
  } finally {
    clearInterval(drip);
    for (const sock of socks) sock.destroy();
  }
  await stop(s);
});

test('six hundred idle or half-sent connections do not lock out a check-in', async (t) => {
  // The shipped limit of 512 connections: more than that, doing nothing, used to have every new
  // client closed unanswered until theirs timed out.
  const s = await start();
  const socks = [];
  let closedByServer = 0;
  for (let i = 0; i < 600; ++i) {
    socks.push(await new Promise((resolve) => {
      const sock = net.connect(s.port, '127.0.0.1', () => resolve(sock));
      sock.on('error', () => {});
      sock.on('end', () => { ++closedByServer; });
      sock.resume();
    }));
    if (i % 2) socks[i].write('POST /wecom/callback?msg_signature=0 HTTP/1.1\r\nHost: x\r\n');
  }
  try {
    await sleep(200);
    const r = await checkin(s.base, 'flood-1', 'zhangwei', '@帮扶助手 走访 王秀英户 今天');
    assert.equal(r.status, 200);
    assert.match(r.content, /已记下/);
    assert.equal((await fetch(`${s.base}/healthz`)).status, 200);
    t.diagnostic(`connections the server closed to make room: ${closedByServer} of 600`);
  } finally {
    for (const sock of socks) sock.destroy();
  }
  await stop(s);
  const evicted = [...s.log().matchAll(/event=http_limits .*evicted=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  assert.ok(evicted >= 88, `evicted=${evicted} in the log`);
});

// Reads HTTP/1.1 responses with Content-Length bodies off a buffer: [{ status, headers, body }].
function parseResponses(data) {
  const out = [];
  let rest = Buffer.from(data, 'latin1');
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.subarray(0, end).toString('latin1').split('\r\n');
    const headers = {};
    for (const l of head.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] || 0);
    if (rest.length < end + 4 + len) break;
    out.push({ status: Number(head[0].split(' ')[1]), headers, body: rest.subarray(end + 4, end + 4 + len).toString('utf8') });
    rest = rest.subarray(end + 4 + len);
  }
  return out;
}

test('keep-alive and pipelined requests are answered in order on one connection', async () => {
  const s = await start();
  const cbs = [1, 2].map((i) => callback(textMessage(`pipe-${i}`, 'zhangwei', `@帮扶助手 走访 ${i === 1 ? '王秀英' : '李德明'}户 今天`)));
  const postOf = (cb) => `POST /wecom/callback?${cb.query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(cb.body)}\r\n\r\n${cb.body}`;
  const get = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  // All five requests in one write: the server must answer each, in order, on this connection.
  const bytes = get + postOf(cbs[0]) + get + postOf(cbs[1]) + 'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n';
  const sock = net.connect(s.port, '127.0.0.1', () => sock.write(bytes));
  let data = '';
  sock.setEncoding('latin1');
  sock.on('data', (d) => { data += d; });
  const until = Date.now() + 10000;
  while (parseResponses(data).length < 5 && Date.now() < until) await sleep(20);
  const rs = parseResponses(data);
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 404]);
  assert.equal(rs[0].body, 'ok\n');
  assert.equal(rs[2].body, 'ok\n');
  for (const [i, r] of [[0, rs[1]], [1, rs[3]]]) {
    const reply = openReply(JSON.parse(r.body), cbs[i].nonce);
    assert.equal(reply.stream.id, `pipe-${i + 1}`);
    assert.match(reply.stream.content, /已记下/);
  }
  // Ids grow in the order the requests were sent.
  const ids = rs.map((r) => Number(r.headers['x-request-id'].split('-')[1]));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], JSON.stringify(ids));
  // Still open (keep-alive): one more request on the same connection.
  assert.ok(!sock.destroyed);
  data = '';
  sock.write(get);
  while (parseResponses(data).length < 1 && Date.now() < until + 5000) await sleep(20);
  assert.equal(parseResponses(data)[0]?.status, 200);
  // Connection: close is honoured.
  data = '';
  const closed = new Promise((r) => sock.on('close', r));
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await closed;
  assert.equal(parseResponses(data)[0]?.status, 200);
  assert.match(data, /\r\nConnection: close\r\n/i);
  // A known path with another method: 405, and what it takes.
  const refused = await fetch(`${s.base}/healthz`, { method: 'DELETE' });
  assert.equal(refused.status, 405);
  assert.equal(refused.headers.get('allow'), 'GET, HEAD');
  await stop(s);
});
