// Checks a bench round (bench/compare.sh): decrypts every reply wrk kept (one JSON envelope a
// line), takes its msgid from the stream reply, and looks it up in the server's database. A
// reply that says a check-in was recorded (已记下) must have its check-in row, every other one
// its inbound row. Prints the counts; exits 1 if an acknowledged msgid is missing.
// usage: node verify.mjs DATABASE REPLY_FILE...   (env: WECOM_AES_KEY)
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { decrypt } from '@wecom/crypto';

const [database, ...files] = process.argv.slice(2);
const db = new Database(database, { readonly: true });
const inbound = new Set(db.prepare('SELECT msgid FROM inbound').pluck().all());
const checkins = new Set(db.prepare('SELECT msgid FROM checkins WHERE msgid IS NOT NULL').pluck().all());
let acked = 0, recorded = 0, missing = 0;
for (const f of files) {
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    if (!line) continue;
    const reply = JSON.parse(decrypt(process.env.WECOM_AES_KEY, JSON.parse(line).encrypt).message);
    const { id, content } = reply.stream;
    acked++;
    if (content.includes('已记下')) {
      recorded++;
      if (!checkins.has(id)) { missing++; if (missing <= 5) console.log(`missing check-in ${id}`); }
    } else if (!inbound.has(id)) {
      missing++;
      if (missing <= 5) console.log(`missing message ${id}`);
    }
  }
}
console.log(`verify: ${acked} acknowledged, ${recorded} of them check-ins, ${missing} missing from the database`);
process.exit(missing ? 1 : 0);
