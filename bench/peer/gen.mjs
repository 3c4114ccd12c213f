// Writes N signed, AES-encrypted WeCom text callbacks (bench/compare.sh), one a line:
// "TARGET<TAB>BODY", stamped now, each with its own msgid and nonce. Texts are taken in turn
// from a `bangfu simulate traffic` file (JSON lines {time, userid, text}).
// usage: node gen.mjs TRAFFIC.jsonl N MSGID_PREFIX OUT   (env: WECOM_TOKEN, WECOM_AES_KEY)
import { readFileSync, createWriteStream } from 'node:fs';
import { getSignature, encrypt } from '@wecom/crypto';

const [traffic, n, prefix, outPath] = process.argv.slice(2);
const TOKEN = process.env.WECOM_TOKEN;
const AES_KEY = process.env.WECOM_AES_KEY;
const msgs = readFileSync(traffic, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const out = createWriteStream(outPath);
const ts = String(Math.floor(Date.now() / 1000));
let buf = '';
for (let i = 0; i < Number(n); i++) {
  const m = msgs[i % msgs.length];
  const msg = {
    msgid: `${prefix}-${i}`, aibotid: 'AIBOT', chatid: 'CHAT1', chattype: 'group',
    from: { userid: m.userid }, msgtype: 'text', text: { content: m.text },
  };
  const enc = encrypt(AES_KEY, JSON.stringify(msg), '');
  const nonce = `n${prefix.replace(/[^A-Za-z0-9]/g, '')}${i}`;
  const sig = getSignature(TOKEN, ts, nonce, enc);
  buf += `/wecom/callback?msg_signature=${sig}&timestamp=${ts}&nonce=${nonce}\t${JSON.stringify({ encrypt: enc })}\n`;
  if (buf.length > 1 << 20) { out.write(buf); buf = ''; }
}
out.end(buf);
