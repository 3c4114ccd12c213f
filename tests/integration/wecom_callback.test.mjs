import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getSignature, encrypt } from '@wecom/crypto';
import {
  AES_KEY, TOKEN, makeDistrict, startServer, callback, textMessage, post, openReply, ledger,
  nowSeconds, nonce,
} from './harness.mjs';

let district;
let server;

function thisMonth() {
  // The service counts in Asia/Shanghai (UTC+8).
  const d = new Date(Date.now() + 8 * 3600 * 1000);
  return d.toISOString().slice(0, 7);
}

before(async () => {
  district = makeDistrict();
  server = await startServer(district.config);
});

after(async () => {
  if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
});

test('URL verification answers the decrypted echostr as plain text', async () => {
  const ts = nowSeconds();
  const n = nonce();
  const echostr = encrypt(AES_KEY, '1616140317555161061', '');
  const sig = getSignature(TOKEN, ts, n, echostr);
  const q = new URLSearchParams({ msg_signature: sig, timestamp: String(ts), nonce: n, echostr });
  const started = Date.now();
  const res = await fetch(`${server.base}/wecom/callback?${q}`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '1616140317555161061');
  assert.ok(Date.now() - started < 1000, 'answered within 1 s');

  const bad = new URLSearchParams({ msg_signature: '0'.repeat(40), timestamp: String(ts), nonce: n, echostr });
  assert.equal((await fetch(`${server.base}/wecom/callback?${bad}`)).status, 401);
});

test('a check-in is recorded once, its retry gets the same answer', async () => {
  const msg = textMessage('msg-checkin-1', 'zhangwei', '@帮扶助手 走访 王秀英户 今天 送去棉被，老人腿疼已联系村医');
  const first = callback(msg);
  const res = await post(server.base, first);
  assert.equal(res.status, 200);
  const reply = openReply(await res.json(), first.nonce);
  assert.equal(reply.msgtype, 'stream');
  assert.equal(reply.stream.finish, true);
  assert.match(reply.stream.content, /已记下/);
  assert.match(reply.stream.content, /王\*英户/);
  assert.doesNotMatch(reply.stream.content, /王秀英/, 'beneficiary name is masked in the chat');

  // WeCom retries with a new timestamp and nonce but the same msgid.
  const retry = callback(msg);
  const res2 = await post(server.base, retry);
  assert.equal(res2.status, 200);
  const reply2 = openReply(await res2.json(), retry.nonce);
  assert.equal(reply2.stream.content, reply.stream.content);

  const rows = ledger(district.config, thisMonth()).filter((r) => r.msgid === 'msg-checkin-1');
  assert.equal(rows.length, 1, 'one record for the message and its retry');
  assert.equal(rows[0].household_id, 'H001');
  assert.equal(rows[0].mode, 'visit');
});

test('a tampered signature is refused with 401 and records nothing', async () => {
  const msg = textMessage('msg-tampered', 'zhangwei', '走访 李德明户 今天');
  const cb = callback(msg);
  const flipped = cb.sig.slice(0, -1) + (cb.sig.endsWith('0') ? '1' : '0');
  cb.query.set('msg_signature', flipped);
  const res = await post(server.base, cb);
  assert.equal(res.status, 401);
  assert.doesNotMatch(await res.text(), /signature|sha1|token/i, 'no detail leaks');
  const rows = ledger(district.config, thisMonth()).filter((r) => r.msgid === 'msg-tampered');
  assert.equal(rows.length, 0);
});

test('bad input gets a clear status and changes nothing', async () => {
  const msg = textMessage('msg-bad', 'zhangwei', '走访 李德明户 今天');
  // A timestamp older than the allowed skew.
  const stale = callback(msg, { timestamp: nowSeconds() - 3600 });
  assert.equal((await post(server.base, stale)).status, 401);
  // A body over 64 KiB.
  const big = callback(msg);
  big.body = JSON.stringify({ encrypt: 'A'.repeat(70 * 1024) });
  assert.equal((await post(server.base, big)).status, 413);
  // A correctly signed envelope whose ciphertext is garbage.
  const ts = nowSeconds();
  const n = nonce();
  const garbage = 'bm90IGEgcmVhbCBjaXBoZXJ0ZXh0';
  const q = new URLSearchParams({ msg_signature: getSignature(TOKEN, ts, n, garbage), timestamp: String(ts), nonce: n });
  const res = await fetch(`${server.base}/wecom/callback?${q}`, { method: 'POST', body: JSON.stringify({ encrypt: garbage }) });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /does not decrypt with this bot's EncodingAESKey/);
  // Not JSON at all.
  const res2 = await fetch(`${server.base}/wecom/callback?${q}`, { method: 'POST', body: 'hello' });
  assert.equal(res2.status, 400);
  assert.match(await res2.text(), /the body must be JSON with the encrypted message in "encrypt"/);
  const rows = ledger(district.config, thisMonth()).filter((r) => r.msgid === 'msg-bad');
  assert.equal(rows.length, 0);
  // Still serving.
  assert.equal((await fetch(`${server.base}/healthz`)).status, 200);
});

test('commands and errors answer in Chinese', async () => {
  const cases = [
    ['zhangwei', '@帮扶助手 我的结对', /结对共 2 个/],
    ['zhangwei', '@帮扶助手 走访 周大福户 今天', /不在|没有/],
    ['stranger', '@帮扶助手 走访 王秀英户 今天', /名册/],
    ['zhangwei', '@帮扶助手 撤销', /已撤销/],
  ];
  let i = 0;
  for (const [user, text, expected] of cases) {
    const cb = callback(textMessage(`msg-cmd-${i++}`, user, text));
    const res = await post(server.base, cb);
    assert.equal(res.status, 200, text);
    const reply = openReply(await res.json(), cb.nonce);
    assert.match(reply.stream.content, expected, text);
    assert.doesNotMatch(reply.stream.content, /王秀英|李德明/, 'names masked');
  }
  const undone = ledger(district.config, thisMonth()).find((r) => r.msgid === 'msg-checkin-1');
  assert.equal(undone.undone, true, 'undo marks the last check-in undone, keeps it');
});

test('SIGTERM drains and exits 0, with every request line written', async () => {
  server.child.kill('SIGTERM');
  const { code } = await server.exited;
  assert.equal(code, 0);
  // The service holds request lines up to 20 ms to write them together: by the time it has
  // exited, each message's line and its request's line are out, before the last line.
  const lines = server.log().trimEnd().split('\n');
  const rid = (l) => / rid=(\S+)/.exec(l)?.[1];
  const messages = lines.filter((l) => / event=message /.test(l)).map(rid);
  const requests = new Set(lines.filter((l) => / event=http .*path=\/wecom\/callback status=200$/.test(l)).map(rid));
  assert.ok(messages.length >= 5, `${messages.length} message lines`);
  for (const r of messages) assert.ok(requests.has(r), `no request line for message ${r}`);
  assert.match(lines.at(-1), / event=stopped /);
});
