// Check-ins through one WeCom long connection (issue 12 §1; BENCHMARKS.md §11): the fake
// long-connection server of the integration tests pushes N text check-ins to `bangfu serve`
// (websocket mode) with at most WINDOW unanswered at a time, and times each frame from the push
// to bangfu's aibot_respond_msg. bangfu answers only after the check-in is group-committed and
// fsynced; afterwards every answered msgid is looked up in the database.
//
//   cd tests/integration && npm ci
//   BANGFU_BIN=build-release/bangfu N=3000 WINDOW=32 node bench/ws_checkins.mjs
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FakeWecomWs } from '../tests/integration/wecom_ws_fake.mjs';
import { makeDistrictWith, rosterOf, householdsOf, sqlite } from '../tests/integration/harness.mjs';

const N = Number(process.env.N ?? 3000);
const WINDOW = Number(process.env.WINDOW ?? 32);
const HELPERS = 200;

const roster = rosterOf(HELPERS, 2);
const fake = await new FakeWecomWs({ botId: 'aibBENCH', secret: 'bench-secret' }).start();
const d = makeDistrictWith({ limits: { per_sender_per_minute: 0 } }, roster);
const config = JSON.parse(readFileSync(d.config, 'utf8'));
config.wecom = { mode: 'websocket', bot_id: 'aibBENCH', secret: 'bench-secret', ws_url: fake.url };
writeFileSync(d.config, JSON.stringify(config));

const child = spawn(process.env.BANGFU_BIN, ['serve', '--config', d.config], { stdio: ['ignore', 'ignore', 'pipe'] });
child.stderr.resume();
await fake.until(() => fake.subscribes === 1, 10000, 'the subscribe');

const sentAt = new Map();  // req_id → performance.now() at push
const latencies = [];
let answered = 0;
let resolveDone;
const done = new Promise((r) => { resolveDone = r; });
let next = 0;
const msgids = [];

function pushOne() {
  const i = next++;
  const helper = `h${String(i % HELPERS).padStart(3, '0')}`;
  const homes = householdsOf(roster, helper);
  const head = homes[Math.floor(i / HELPERS) % homes.length].head;
  const msgid = `bench-${i}`;
  msgids.push(msgid);
  const reqId = `aibot_msg_callback_${i}`;
  sentAt.set(reqId, performance.now());
  fake.push('aibot_msg_callback', {
    msgid, aibotid: 'aibBENCH', chatid: 'CHAT1', chattype: 'group', from: { userid: helper },
    msgtype: 'text', text: { content: `走访 ${head}户 今天 了解近况` },
  }, reqId);
}

// Time each answer the moment the fake's socket delivers it.
fake.current.on('message', (data) => {
  const f = JSON.parse(data.toString());
  if (f.cmd !== 'aibot_respond_msg') return;
  const t0 = sentAt.get(f.headers.req_id);
  if (t0 === undefined) return;
  latencies.push(performance.now() - t0);
  answered++;
  if (next < N) pushOne();
  if (answered === N) resolveDone();
});

const cpu0 = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' ');
const start = performance.now();
for (let i = 0; i < Math.min(WINDOW, N); i++) pushOne();
await done;
const seconds = (performance.now() - start) / 1000;
const cpu1 = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' ');
const ticks = (Number(cpu1[13]) + Number(cpu1[14])) - (Number(cpu0[13]) + Number(cpu0[14]));

child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
await fake.stop();

latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
const stored = Number(sqlite(d.database, `SELECT count(*) FROM inbound WHERE msgid LIKE 'bench-%'`));
const checkins = Number(sqlite(d.database, `SELECT count(*) FROM checkins WHERE msgid LIKE 'bench-%'`));
console.log(JSON.stringify({
  messages: N, window: WINDOW, seconds: Number(seconds.toFixed(2)),
  checkins_per_second: Math.round(N / seconds),
  latency_ms: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: latencies.at(-1).toFixed(2) },
  bangfu_cpu_seconds: ticks / 100, answered, inbound_rows: stored, checkin_rows: checkins,
}));
