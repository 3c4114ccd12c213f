// The Node.js peer bangfu is measured against (bench/compare.sh): the quick WeCom AI-bot
// check-in service a developer would write with the usual packages — express 5, @wecom/crypto,
// better-sqlite3 (WAL, synchronous=NORMAL), one process. It verifies, decrypts, stores the raw
// message once per msgid, records a check-in when the text names a household and a visit, and
// answers with an encrypted stream reply, as bangfu does. Not part of the product.
//
// usage: node server.mjs DATABASE   (env: WECOM_TOKEN, WECOM_AES_KEY; prints the port it bound)
import express from 'express';
import Database from 'better-sqlite3';
import { getSignature, decrypt, encrypt } from '@wecom/crypto';


const TOKEN = process.env.WECOM_TOKEN;
const AES_KEY = process.env.WECOM_AES_KEY;
const db = new Database(process.argv[2]);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`
  CREATE TABLE IF NOT EXISTS inbound (msgid TEXT PRIMARY KEY, userid TEXT NOT NULL,
    text TEXT NOT NULL, received_at INTEGER NOT NULL, reply TEXT);
  CREATE TABLE IF NOT EXISTS checkins (id INTEGER PRIMARY KEY, msgid TEXT NOT NULL,
    userid TEXT NOT NULL, household TEXT NOT NULL, visit_date TEXT NOT NULL);`);
const findReply = db.prepare('SELECT reply FROM inbound WHERE msgid = ?');
const insertInbound = db.prepare('INSERT INTO inbound (msgid, userid, text, received_at) VALUES (?, ?, ?, ?)');
const insertCheckin = db.prepare('INSERT INTO checkins (msgid, userid, household, visit_date) VALUES (?, ?, ?, ?)');
const setReply = db.prepare('UPDATE inbound SET reply = ? WHERE msgid = ?');

// "走访 王秀英户", "王秀英家", "打卡：王秀英家里" …
const HOUSEHOLD = /([\u4e00-\u9fa5]{2,4}?)(?:户|家里|家)/;
const VISIT = /走访|入户|随访|慰问|打卡|家访|看望|探望|电话|视频/;

const handle = db.transaction((msg, now) => {
  const known = findReply.get(msg.msgid);
  if (known) return known.reply;
  const text = msg.text?.content ?? '';
  insertInbound.run(msg.msgid, msg.from?.userid ?? '', text, now);
  const m = HOUSEHOLD.exec(text);
  let reply;
  if (m && VISIT.test(text)) {
    const day = new Date(now * 1000 + 8 * 3600 * 1000).toISOString().slice(0, 10);
    insertCheckin.run(msg.msgid, msg.from?.userid ?? '', m[1], day);
    reply = `已记下：${m[1]}户，${day}。`;
  } else {
    reply = '没看懂这条，发“帮助”看写法。';
  }
  setReply.run(reply, msg.msgid);
  return reply;
});

const app = express();
app.use(express.json({ limit: '64kb' }));
app.get('/healthz', (req, res) => res.type('text/plain').send('ok\n'));
app.post('/wecom/callback', (req, res) => {
  const { msg_signature: sig, timestamp, nonce } = req.query;
  const enc = req.body?.encrypt;
  if (typeof enc !== 'string' || getSignature(TOKEN, timestamp, nonce, enc) !== sig) return res.status(401).send('unauthorized\n');
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return res.status(401).send('unauthorized\n');
  let msg;
  try {
    msg = JSON.parse(decrypt(AES_KEY, enc).message);
  } catch {
    return res.status(400).send('bad request\n');
  }
  const now = Math.floor(Date.now() / 1000);
  const content = handle(msg, now);
  const plain = JSON.stringify({ msgtype: 'stream', stream: { id: msg.msgid, finish: true, content } });
  const out = encrypt(AES_KEY, plain, '');
  const ts = String(now);
  res.json({ encrypt: out, msgsignature: getSignature(TOKEN, ts, nonce, out), timestamp: Number(ts), nonce });
});
const server = app.listen(0, '127.0.0.1', () => console.log(`peer listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => { db.close(); process.exit(0); }));
