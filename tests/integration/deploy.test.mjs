// The deployment commands of the real binary (README "Deploy"): `bangfu --version` and
// `bangfu config check` on the shipped /etc config (deploy/config.json), and start-up refusing a
// missing templates folder with the path it looked at. The installed package is tried by
// scripts/package-test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, cpSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, TOKEN, AES_KEY, scratchDir } from './harness.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

function run(args, env = {}) {
  const r = spawnSync(BIN, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// deploy/config.json with its database moved into a scratch folder, plus `extra` wecom keys.
function shippedConfig(wecom = {}) {
  const dir = scratchDir('bangfu-deploy-');
  const config = JSON.parse(readFileSync(join(ROOT, 'deploy/config.json'), 'utf8'));
  config.database = join(dir, 'state', 'bangfu.db');
  Object.assign(config.wecom, wecom);
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  return { dir, path, database: config.database };
}

test('--version: the project version, the commit, SQLite, OpenSSL and cpp-httplib', () => {
  const { code, out } = run(['--version']);
  assert.equal(code, 0);
  const version = readFileSync(join(ROOT, 'CMakeLists.txt'), 'utf8').match(/VERSION (\d+\.\d+\.\d+)/)[1];
  assert.match(out, new RegExp(`^bangfu ${version.replace(/\./g, '\\.')}\n`));
  assert.match(out, /^SQLite: 3\.\d+\.\d+$/m);
  assert.match(out, /^OpenSSL: OpenSSL 3\./m);
  assert.match(out, /^cpp-httplib: 0\.\d+\.\d+$/m);
  const commit = out.match(/^commit: (.+)$/m)[1];
  if (existsSync(join(ROOT, '.git'))) {
    // Built from this checkout: a commit git knows (HEAD at configure time).
    const type = spawnSync('git', ['-C', ROOT, 'cat-file', '-t', commit], { encoding: 'utf8' });
    assert.equal(type.stdout.trim(), 'commit', `${commit} is not a commit of this repository`);
  } else {
    assert.equal(commit, 'unknown (not built from a git checkout)');
  }
  assert.equal(run(['--version', 'extra']).code, 2);
});

test('config check on the shipped config lists each missing key and exits 2', () => {
  const c = shippedConfig();
  const { code, out } = run(['config', 'check', '--config', c.path]);
  assert.equal(code, 2, out);
  const problems = out.slice(out.indexOf('problems ('));
  // The three a district must fill in, and the database: its folder does not exist here (the
  // package makes /var/lib/bangfu), which is named, and nothing is created.
  assert.match(problems, /^problems \(4\):/);
  for (const key of ['wecom.token', 'wecom.encoding_aes_key', 'wecom.callback_url', 'database'])
    assert.ok(problems.includes(`config key '${key}'`), `${key} not listed:\n${out}`);
  assert.match(problems, /does not exist/);
  assert.match(out, /FAIL {2}database/);
  assert.ok(!existsSync(c.database));
});

test('config check with everything set: exit 0, database created, secrets as ***', () => {
  const c = shippedConfig({ callback_url: 'https://bangfu.example.gov.cn/wecom/callback' });
  execFileSync('mkdir', ['-p', dirname(c.database)]);
  const webhook = 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa';
  const { code, out } = run(['config', 'check', '--config', c.path], {
    BANGFU_WECOM_TOKEN: TOKEN, BANGFU_WECOM_AES_KEY: AES_KEY, BANGFU_WECOM_WEBHOOK_URL: webhook,
  });
  assert.equal(code, 0, out);
  assert.match(out, /^ {2}wecom\.token +\*\*\*$/m);
  assert.match(out, /^ {2}wecom\.encoding_aes_key +\*\*\*$/m);
  assert.match(out, /^ {2}wecom\.webhook_url +https:\/\/qyapi\.weixin\.qq\.com\/cgi-bin\/webhook\/send\?key=\*\*\*$/m);
  for (const secret of [TOKEN, AES_KEY, '693a91f6']) assert.ok(!out.includes(secret), secret);
  assert.match(out, /ok {4}database: .* created, schema version \d+, integrity ok/);
  assert.ok(existsSync(c.database));
  // A second run opens the same database.
  const again = run(['config', 'check', '--config', c.path],
    { BANGFU_WECOM_TOKEN: TOKEN, BANGFU_WECOM_AES_KEY: AES_KEY });
  assert.equal(again.code, 0, again.out);
  assert.match(again.out, /ok {4}database: .* opened/);
});

test('config check: bad JSON, bad values and an unreadable file are exit 2, each named', () => {
  const dir = scratchDir('bangfu-deploy-');
  writeFileSync(join(dir, 'bad.json'), '{"database": ');
  let r = run(['config', 'check', '--config', join(dir, 'bad.json')]);
  assert.equal(r.code, 2);
  assert.match(r.out, /config file is not a JSON object/);
  writeFileSync(join(dir, 'values.json'), JSON.stringify({
    database: 'x.db', listen: 'nowhere', timezone: 'Mars/Olympus', threads: 0,
    wecom: { mode: 'websocket', token: 'has space' },
  }));
  r = run(['config', 'check', '--config', join(dir, 'values.json')]);
  assert.equal(r.code, 2);
  for (const key of ['listen', 'timezone', 'threads', 'wecom.token', 'wecom.bot_id', 'wecom.secret'])
    assert.ok(r.out.includes(`config key '${key}'`), `${key} not listed:\n${r.out}`);
  r = run(['config', 'check', '--config', join(dir, 'absent.json')]);
  assert.equal(r.code, 2);
  assert.match(r.out, /cannot read config file/);
});

test('serve refuses a missing templates folder, naming the path it looked at', () => {
  const c = shippedConfig({ callback_url: 'https://bangfu.example.gov.cn/wecom/callback' });
  const config = JSON.parse(readFileSync(c.path, 'utf8'));
  config.templates_dir = 'no-templates-here';
  writeFileSync(c.path, JSON.stringify(config));
  const r = run(['serve', '--config', c.path],
    { BANGFU_WECOM_TOKEN: TOKEN, BANGFU_WECOM_AES_KEY: AES_KEY });
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`no templates directory at ${join(c.dir, 'no-templates-here')}`), r.err);
  assert.ok(r.err.includes("'templates_dir'"), r.err);
});

test('config check and serve refuse a templates folder that lacks one the bot speaks with', () => {
  const c = shippedConfig({ callback_url: 'https://bangfu.example.gov.cn/wecom/callback' });
  execFileSync('mkdir', ['-p', dirname(c.database)]);
  // The shipped templates without the rate-limit/non-text/welcome answers (service.mustache).
  const templates = join(c.dir, 'templates');
  cpSync(join(ROOT, 'templates'), templates, { recursive: true });
  rmSync(join(templates, 'service.mustache'));
  const config = JSON.parse(readFileSync(c.path, 'utf8'));
  config.templates_dir = templates;
  writeFileSync(c.path, JSON.stringify(config));
  const env = { BANGFU_WECOM_TOKEN: TOKEN, BANGFU_WECOM_AES_KEY: AES_KEY };
  const check = run(['config', 'check', '--config', c.path], env);
  assert.equal(check.code, 2, check.out);
  assert.ok(check.out.includes(join(templates, 'service.mustache')), check.out);
  const serve = run(['serve', '--config', c.path], env);
  assert.equal(serve.code, 1, serve.err);
  assert.ok(serve.err.includes(join(templates, 'service.mustache')), serve.err);
  // All there, but error.mustache as an older release shipped it: it would answer with nothing.
  cpSync(join(ROOT, 'templates', 'service.mustache'), join(templates, 'service.mustache'));
  writeFileSync(join(templates, 'error.mustache'), '{{message}}{{#hint}}\n{{hint}}{{/hint}}\n');
  const stale = run(['config', 'check', '--config', c.path], env);
  assert.equal(stale.code, 2, stale.out);
  assert.match(stale.out, /error\.mustache:0: says nothing for not_understood/);
  const refused = run(['serve', '--config', c.path], env);
  assert.equal(refused.code, 1, refused.err);
  assert.match(refused.err, /error\.mustache:0: says nothing for not_understood/);
});
