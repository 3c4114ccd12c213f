// WeCom long-connection mode (issue 12 §1). First the fake server (wecom_ws_fake.mjs) is proved
// against Tencent's own client, @wecom/aibot-node-sdk; then the real bangfu binary runs against the
// fake with short periods (ping 150 ms, reconnect backoff 50 ms → 400 ms) so no test waits long.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { WSClient } from '@wecom/aibot-node-sdk';
import { FakeWecomWs, WRONG_SECRET_ERRCODE } from './wecom_ws_fake.mjs';
import { BIN, makeDistrictWith, sqlite } from './harness.mjs';

const BOT_ID = 'aibTESTBOT01';
const SECRET = 'ws-secret-do-not-log-7f3a';

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

test('the fake speaks the protocol: Tencent\'s SDK subscribes, pings, gets a message and replies', async () => {
  const fake = await new FakeWecomWs({ botId: BOT_ID, secret: SECRET }).start();
  const client = new WSClient({
    botId: BOT_ID, secret: SECRET, wsUrl: fake.url, heartbeatInterval: 100, logger: quietLogger,
  });
  try {
    const authenticated = new Promise((resolve) => client.once('authenticated', resolve));
    client.connect();
    await authenticated;
    const sub = fake.framesOf('aibot_subscribe')[0].frame;
    assert.deepEqual(sub.body, { bot_id: BOT_ID, secret: SECRET });
    assert.match(sub.headers.req_id, /^aibot_subscribe_/);

    // Pings are acked: after several periods the SDK still has its first connection.
    await fake.until(() => fake.framesOf('ping').length >= 4, 3000, 'four pings');
    assert.equal(fake.connections, 1, 'the SDK did not reconnect: the fake acks its pings');

    // A message in, a finished stream out with the same req_id, acked.
    let replied;
    client.on('message.text', (frame) => {
      replied = client.replyStream(frame, frame.body.msgid, `收到：${frame.body.text.content}`, true);
    });
    const reqId = fake.message('sdk-1', 'zhangwei', '你好');
    await fake.until(() => fake.replyTo(reqId), 3000, 'the SDK reply');
    const reply = fake.replyTo(reqId).frame;
    assert.equal(reply.cmd, 'aibot_respond_msg');
    assert.deepEqual(reply.body, { msgtype: 'stream', stream: { id: 'sdk-1', finish: true, content: '收到：你好' } });
    assert.equal((await replied).errcode, 0);

    // aibot_send_msg: the SDK's sendMessage resolves with the fake's ack.
    const ack = await client.sendMessage('CHAT1', { msgtype: 'markdown', markdown: { content: '**通报**' } });
    assert.equal(ack.errcode, 0);
    assert.deepEqual(fake.framesOf('aibot_send_msg')[0].frame.body,
      { chatid: 'CHAT1', msgtype: 'markdown', markdown: { content: '**通报**' } });

    // Pings unanswered: the SDK gives the connection up and dials again.
    fake.ackPings = false;
    await fake.until(() => fake.subscribes >= 2, 3000, 'the SDK to reconnect after missed pings');
    fake.ackPings = true;

    // disconnected_event: the SDK closes and does not come back.
    const disconnected = new Promise((resolve) => client.once('disconnected', resolve));
    fake.event('disconnected_event');
    await disconnected;
    const before = fake.connections;
    await sleep(400);
    assert.equal(fake.connections, before, 'no reconnect after disconnected_event');
  } finally {
    client.disconnect();
    await fake.stop();
  }
});

// --- bangfu against the fake ---------------------------------------------------------------------

const TEST_PERIODS = {
  BANGFU_WS_PING_MS: '150',
  BANGFU_WS_BACKOFF_MIN_MS: '50',
  BANGFU_WS_BACKOFF_MAX_MS: '400',
  BANGFU_WS_CONNECT_TIMEOUT_MS: '2000',
};

// A district in websocket mode: no token, no AES key, no webhook.
function websocketDistrict(fake, secret = SECRET) {
  const d = makeDistrictWith();
  const config = JSON.parse(readFileSync(d.config, 'utf8'));
  config.wecom = { mode: 'websocket', bot_id: BOT_ID, secret, ws_url: fake.url };
  writeFileSync(d.config, JSON.stringify(config));
  return d;
}

async function startBangfu(config, env = {}) {
  const child = spawn(BIN, ['serve', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...TEST_PERIODS, ...env },
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`bangfu did not start: ${log}`)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => reject(new Error(`bangfu exited ${code}: ${log}`)));
  });
  return {
    child, base: `http://127.0.0.1:${port}`, log: () => log, exited,
    async stop() { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await exited; } },
  };
}

async function withBangfu(fn, { secret = SECRET, fakeSecret = SECRET } = {}) {
  const fake = await new FakeWecomWs({ botId: BOT_ID, secret: fakeSecret }).start();
  const d = websocketDistrict(fake, secret);
  const bangfu = await startBangfu(d.config);
  try {
    await fn({ fake, d, bangfu });
  } finally {
    await bangfu.stop();
    await fake.stop();
  }
  assert.ok(!bangfu.log().includes(secret), 'the secret never reaches the log');
  assert.deepEqual(await bangfu.exited, { code: 0, signal: null }, 'SIGTERM: a clean exit');
}

const count = (db, sql) => Number(sqlite(db, sql));

test('bangfu subscribes with bot_id and secret, answers a check-in with the same req_id, welcomes with the help text', async () => {
  await withBangfu(async ({ fake, d, bangfu }) => {
    await fake.until(() => fake.subscribes === 1, 5000, 'the subscribe');
    const sub = fake.framesOf('aibot_subscribe')[0].frame;
    assert.deepEqual(sub.body, { bot_id: BOT_ID, secret: SECRET });

    const reqId = fake.message('ws-1', 'zhangwei', '走访 王秀英户 今天 送去棉被');
    await fake.until(() => fake.replyTo(reqId), 5000, 'the answer');
    const reply = fake.replyTo(reqId).frame;
    assert.equal(reply.cmd, 'aibot_respond_msg');
    assert.equal(reply.body.msgtype, 'stream');
    assert.equal(reply.body.stream.id, 'ws-1');
    assert.equal(reply.body.stream.finish, true);
    assert.match(reply.body.stream.content, /已记下/);
    assert.match(reply.body.stream.content, /王\*英户/);
    assert.doesNotMatch(reply.body.stream.content, /王秀英/);
    // Answered only after it is on disk.
    assert.equal(count(d.database, "SELECT count(*) FROM checkins WHERE msgid = 'ws-1'"), 1);

    const ev = fake.event('enter_chat');
    await fake.until(() => fake.replyTo(ev), 5000, 'the welcome');
    const welcome = fake.replyTo(ev).frame;
    assert.equal(welcome.cmd, 'aibot_respond_welcome_msg');
    assert.equal(welcome.body.msgtype, 'text');
    const help = readFileSync(new URL('../../templates/help.mustache', import.meta.url), 'utf8');
    assert.equal(welcome.body.text.content, help);

    // Only /healthz over HTTP; no callback route in websocket mode.
    assert.equal((await fetch(`${bangfu.base}/healthz`)).status, 200);
    assert.equal((await fetch(`${bangfu.base}/wecom/callback`, { method: 'POST', body: '{}' })).status, 404);
    assert.match(bangfu.log(), /event=ws_subscribed/);
  });
});

test('a wrong secret: the errmsg is logged (never the secret) and bangfu retries with backoff', async () => {
  await withBangfu(async ({ fake, bangfu }) => {
    await fake.until(() => fake.framesOf('aibot_subscribe').length >= 3, 5000, 'three subscribe attempts');
    assert.equal(fake.subscribes, 0);
    assert.match(bangfu.log(), new RegExp(`event=ws_subscribe_failed errcode=${WRONG_SECRET_ERRCODE} errmsg="invalid bot_id or secret"`));
    const at = fake.framesOf('aibot_subscribe').map((f) => f.at);
    assert.ok(at[2] - at[1] >= 40, `backoff between attempts: ${at[1] - at[0]} ms, ${at[2] - at[1]} ms`);
  }, { secret: 'wrong-secret-also-not-logged' });
});

test('the same message delivered twice gets the same answer and is recorded once', async () => {
  await withBangfu(async ({ fake, d }) => {
    await fake.until(() => fake.subscribes === 1, 5000, 'the subscribe');
    const first = fake.message('dup-1', 'zhangwei', '走访 李德明户 今天 了解收入');
    await fake.until(() => fake.replyTo(first), 5000, 'the first answer');
    const second = fake.message('dup-1', 'zhangwei', '走访 李德明户 今天 了解收入');
    await fake.until(() => fake.replyTo(second), 5000, 'the second answer');
    assert.notEqual(first, second);
    assert.deepEqual(fake.replyTo(second).frame.body, fake.replyTo(first).frame.body);
    assert.equal(count(d.database, "SELECT count(*) FROM inbound WHERE msgid = 'dup-1'"), 1);
    assert.equal(count(d.database, "SELECT count(*) FROM checkins WHERE msgid = 'dup-1'"), 1);
  });
});

test('the server drops the connection: bangfu reconnects and nothing is lost', async () => {
  await withBangfu(async ({ fake, d, bangfu }) => {
    await fake.until(() => fake.subscribes === 1, 5000, 'the subscribe');
    // The connection breaks right after the message is pushed, before any answer can come back.
    const lost = fake.message('drop-1', 'zhangwei', '走访 王秀英户 今天 送米');
    fake.drop();
    await fake.until(() => fake.subscribes === 2, 5000, 'the reconnect');
    assert.match(bangfu.log(), /event=ws_reconnect/);
    // WeCom delivers it again on the new connection: the same answer, one record.
    const again = fake.message('drop-1', 'zhangwei', '走访 王秀英户 今天 送米');
    await fake.until(() => fake.replyTo(again), 5000, 'the answer after the reconnect');
    assert.match(fake.replyTo(again).frame.body.stream.content, /已记下/);
    assert.equal(count(d.database, "SELECT count(*) FROM checkins WHERE msgid = 'drop-1'"), 1);
    const onOld = fake.replyTo(lost);
    if (onOld) assert.deepEqual(onOld.frame.body, fake.replyTo(again).frame.body);
  });
});

test('pings without acks: bangfu gives the connection up and reconnects', async () => {
  await withBangfu(async ({ fake, bangfu }) => {
    await fake.until(() => fake.subscribes === 1, 5000, 'the subscribe');
    await fake.until(() => fake.framesOf('ping').length >= 2, 3000, 'two pings');
    assert.equal(fake.connections, 1, 'acked pings keep the connection');
    fake.ackPings = false;
    await fake.until(() => fake.subscribes === 2, 5000, 'the reconnect after missed acks');
    fake.ackPings = true;
    assert.match(bangfu.log(), /event=ws_ping_timeout missed=2/);
    const ping = fake.framesOf('ping')[0].frame;
    assert.match(ping.headers.req_id, /^ping_/);
  });
});

test('disconnected_event: no reconnect, /healthz 503 with the reason, the service keeps running', async () => {
  await withBangfu(async ({ fake, bangfu }) => {
    await fake.until(() => fake.subscribes === 1, 5000, 'the subscribe');
    fake.event('disconnected_event');
    await fake.until(() => bangfu.log().includes('event=ws_taken_over'), 5000, 'the taken-over log line');
    await sleep(600);  // more than the longest backoff
    assert.equal(fake.connections, 1, 'no reconnect');
    const res = await fetch(`${bangfu.base}/healthz`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /disconnected_event/);
    assert.match(bangfu.log(), /level=error event=ws_taken_over/);
    assert.equal(bangfu.child.exitCode, null, 'still running');
  });
});

test('SIGKILL while messages stream in: every acknowledged check-in is on disk after the restart', async () => {
  const fake = await new FakeWecomWs({ botId: BOT_ID, secret: SECRET }).start();
  const d = websocketDistrict(fake);
  let bangfu = await startBangfu(d.config);
  try {
    await fake.until(() => fake.subscribes === 1, 5000, 'the subscribe');
    const texts = ['走访 王秀英户 今天 送棉被', '走访 李德明户 今天 了解收入'];
    const sent = [];
    const answeredNow = () => sent.filter((s) => fake.replyTo(s.reqId)).length;
    // A steady stream; SIGKILL once 40 answers are back, with more still in flight.
    for (let i = 0; fake.current && i < 2000; i++) {
      sent.push({ msgid: `kill-${i}`, reqId: fake.message(`kill-${i}`, 'zhangwei', texts[i % 2]) });
      if (i % 8 === 7) await sleep(2);
      if (bangfu.child.signalCode === null && answeredNow() >= 40) bangfu.child.kill('SIGKILL');
    }
    await bangfu.exited;
    const answered = sent.filter((s) => fake.replyTo(s.reqId));
    assert.ok(answered.length >= 40 && answered.length < sent.length,
      `killed mid-stream: ${answered.length} of ${sent.length} answered`);
    bangfu = await startBangfu(d.config);
    await fake.until(() => fake.subscribes === 2, 5000, 'the subscribe after the restart');
    for (const s of answered) {
      assert.equal(count(d.database, `SELECT count(*) FROM inbound WHERE msgid = '${s.msgid}'`), 1, s.msgid);
      if (/已记下/.test(fake.replyTo(s.reqId).frame.body.stream.content))
        assert.equal(count(d.database, `SELECT count(*) FROM checkins WHERE msgid = '${s.msgid}'`), 1, s.msgid);
    }
    assert.equal(sqlite(d.database, 'PRAGMA integrity_check'), 'ok');
  } finally {
    await bangfu.stop();
    await fake.stop();
  }
});

test('a bulletin goes out by aibot_send_msg exactly once, across a restart of bangfu; its chart as uploaded media', async () => {
  const fake = await new FakeWecomWs({ botId: BOT_ID, secret: SECRET }).start();
  const d = websocketDistrict(fake);
  const config = JSON.parse(readFileSync(d.config, 'utf8'));
  config.groups = [{ name: '高新扶贫', chat_id: 'wrkCHATALL', ledgers: ['cadre', 'health', 'education'] }];
  writeFileSync(d.config, JSON.stringify(config));
  // Last month in Shanghai: a period that is over.
  const shanghai = new Date(Date.now() + 8 * 3600 * 1000);
  const last = new Date(Date.UTC(shanghai.getUTCFullYear(), shanghai.getUTCMonth() - 1, 1));
  const period = last.toISOString().slice(0, 7);
  const args = ['bulletin', '--config', d.config, '--kind', 'monthly', '--period', period, '--ledger', 'cadre'];
  const printed = execFileSync(BIN, args).toString();

  // The CLI only queues: the bot's one connection belongs to the service.
  const queued = spawnSync(BIN, [...args, '--post']);
  assert.equal(queued.status, 0, queued.stderr.toString());
  assert.equal(fake.connections, 0, 'bangfu bulletin --post does not connect');

  let bangfu = await startBangfu(d.config);
  try {
    await fake.until(() => fake.framesOf('aibot_send_msg').length >= 2, 10000, 'the bulletin and its chart');
    const sends = fake.framesOf('aibot_send_msg').map((f) => f.frame.body);
    assert.deepEqual(Object.keys(sends[0]).sort(), ['chatid', 'markdown', 'msgtype']);
    assert.equal(sends[0].chatid, 'wrkCHATALL');
    assert.equal(sends[0].msgtype, 'markdown');
    assert.equal(sends[0].markdown.content, printed.trimEnd());
    // The chart: uploaded in chunks, then sent as an image message with its media_id.
    assert.equal(sends[1].msgtype, 'image');
    const png = fake.media.get(sends[1].image.media_id);
    assert.ok(png && png.subarray(1, 4).toString() === 'PNG', 'the uploaded media is the PNG chart');
    const init = fake.framesOf('aibot_upload_media_init')[0].frame.body;
    assert.equal(init.total_size, png.length);
    assert.equal(init.md5, createHash('md5').update(png).digest('hex'));
    await fake.until(() => /sent/.test(execFileSync(BIN, ['outbox', 'list', '--config', d.config]).toString()), 3000, 'outbox sent');

    // A restart sends nothing again.
    await bangfu.stop();
    bangfu = await startBangfu(d.config);
    await fake.until(() => fake.subscribes === 2, 5000, 'the subscribe after the restart');
    await sleep(500);
    assert.equal(fake.framesOf('aibot_send_msg').length, 2, 'nothing sent twice');
    const list = execFileSync(BIN, ['outbox', 'list', '--config', d.config]).toString();
    assert.doesNotMatch(list, /pending|sending|unknown|failed/, list);
  } finally {
    await bangfu.stop();
    await fake.stop();
  }
});
