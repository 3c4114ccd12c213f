// The shipped nginx site (deploy/nginx/bangfu.conf) in front of a real `bangfu serve`: nginx runs
// on the loopback with a self-signed certificate (openssl req), the site's listen ports,
// certificate paths and upstream rewritten, nothing else. A signed check-in must go through and be
// stored; every other path, method and an oversized body must be refused by nginx.
// Needs nginx (NGINX_BIN, default /usr/sbin/nginx) and openssl; scripts/install-deps.sh installs
// both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer, connect } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BIN, makeDistrict, startServer, callback, textMessage, openReply, ledger, nowSeconds,
} from './harness.mjs';

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const SITE = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/nginx/bangfu.conf');

let district;
let server;
let nginx;
let nginxLog = '';
let tlsPort;
let plainPort;
let cert;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Replaces `from` in `text`, failing when it is not there exactly once: if the site changes, the
// test must be told, not quietly run a different site.
function rewrite(text, from, to) {
  const n = text.split(from).length - 1;
  assert.equal(n, 1, `deploy/nginx/bangfu.conf: expected exactly one ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => { sock.destroy(); resolve(); });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nginx did not listen: ${nginxLog}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

// One HTTPS request through nginx, trusting only the test's certificate.
function https(method, path, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: tlsPort, method, path, ca: cert, servername: 'localhost', headers,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(),
      }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

before(async () => {
  assert.ok(existsSync(NGINX), `nginx not found at ${NGINX} (scripts/install-deps.sh installs it)`);
  district = makeDistrict();
  server = await startServer(district.config);
  const dir = join(district.dir, 'nginx');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  cert = readFileSync(join(dir, 'cert.pem'));
  tlsPort = await freePort();
  plainPort = await freePort();

  let site = readFileSync(SITE, 'utf8');
  site = rewrite(site, 'server 127.0.0.1:8080;', `server 127.0.0.1:${server.port};`);
  site = rewrite(site, 'listen 443 ssl;', `listen 127.0.0.1:${tlsPort} ssl;`);
  site = rewrite(site, 'listen [::]:443 ssl;', '');
  site = rewrite(site, 'listen 80;', `listen 127.0.0.1:${plainPort};`);
  site = rewrite(site, 'listen [::]:80;', '');
  site = rewrite(site, '/etc/ssl/certs/bangfu.pem', join(dir, 'cert.pem'));
  site = rewrite(site, '/etc/ssl/private/bangfu.key', join(dir, 'key.pem'));
  site = rewrite(site, '/var/log/nginx/bangfu.access.log', join(dir, 'logs', 'access.log'));
  writeFileSync(join(dir, 'site.conf'), site);
  // The main config Debian's nginx.conf would be, reduced to what a test needs: files in `dir`.
  const temp = (name) => `${name} ${join(dir, name)};`;
  writeFileSync(join(dir, 'nginx.conf'), [
    process.getuid && process.getuid() === 0 ? 'user root;' : '',
    'worker_processes 1;', 'daemon off;', `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'logs', 'error.log')} warn;`,
    'events { worker_connections 64; }',
    'http {',
    `  ${temp('client_body_temp_path')} ${temp('proxy_temp_path')} ${temp('fastcgi_temp_path')}`,
    `  ${temp('uwsgi_temp_path')} ${temp('scgi_temp_path')}`,
    '  access_log off;',
    `  include ${join(dir, 'site.conf')};`,
    '}', ''].join('\n'));
  execFileSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs', 'error.log')],
    { stdio: 'pipe' });
  nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs', 'error.log')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  nginx.stderr.on('data', (d) => { nginxLog += d; });
  await waitForPort(tlsPort, 10000);
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((resolve) => nginx.on('exit', resolve));
    nginx.kill('SIGQUIT');  // graceful stop of master and worker
    await exited;
  }
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    const { code } = await server.exited;
    assert.equal(code, 0, 'bangfu drains and exits 0 on SIGTERM');
  }
});

test('a signed check-in goes through nginx over TLS and is stored', async () => {
  const month = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 7);
  const cb = callback(textMessage('nginx-1', 'zhangwei', '@帮扶助手 走访 王秀英户 今天 送去棉被'));
  const res = await https('POST', `/wecom/callback?${cb.query}`, {
    body: cb.body, headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200, res.body);
  const reply = openReply(JSON.parse(res.body), cb.nonce);
  assert.match(reply.stream.content, /^已记下：.*王\*英户/);
  const rows = ledger(district.config, month).filter((r) => r.msgid === 'nginx-1');
  assert.equal(rows.length, 1);
  assert.equal(rows[0].household_head, '王秀英');
});

test('`bangfu say --url https://… --ca` checks in through the proxy, and refuses an untrusted one',
  () => {
    const url = `https://127.0.0.1:${tlsPort}`;
    const ca = join(district.dir, 'nginx', 'cert.pem');
    const out = execFileSync(BIN, ['say', '--config', district.config, '--from', 'zhangwei',
      '--url', url, '--ca', ca, '走访 李德明户 今天']).toString();
    assert.match(out, /^已记下：.*李\*明户/);
    // Without --ca the self-signed certificate is not trusted: nothing is sent.
    assert.throws(() => execFileSync(BIN, ['say', '--config', district.config, '--from', 'zhangwei',
      '--url', url, '走访 李德明户 今天'], { stdio: 'pipe' }), /cannot reach/);
  });

test('/healthz is passed on; a stale callback gets bangfu\'s 401 through the proxy', async () => {
  const health = await https('GET', '/healthz');
  assert.equal(health.status, 200);
  const cb = callback(textMessage('nginx-stale', 'zhangwei', '走访 王秀英户 今天'),
    { timestamp: nowSeconds() - 301 });
  const res = await https('POST', `/wecom/callback?${cb.query}`, {
    body: cb.body, headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 401);
});

test('every other path and method is refused by nginx, never reaching bangfu', async () => {
  const logBefore = server.log();
  for (const path of ['/', '/office/', '/wecom/callback2', '/wecom/callback/x', '/healthz/x',
    '/wecom', '/.env', '/index.html']) {
    const res = await https('GET', path);
    assert.equal(res.status, 404, path);
  }
  assert.equal((await https('PUT', '/wecom/callback', { body: '{}' })).status, 403);
  assert.equal((await https('DELETE', '/healthz')).status, 403);
  assert.equal((await https('POST', '/healthz', { body: '' })).status, 403);
  // Over client_max_body_size (64k): nginx answers 413 before bangfu sees a byte.
  const big = await https('POST', '/wecom/callback?msg_signature=x&timestamp=1&nonce=1', {
    body: 'x'.repeat(65 * 1024), headers: { 'content-type': 'application/json' },
  });
  assert.equal(big.status, 413);
  // bangfu logged none of these requests (its access lines carry the path).
  const added = server.log().slice(logBefore.length);
  for (const path of ['/office/', '/wecom/callback2', '/.env', 'PUT', 'DELETE'])
    assert.ok(!added.includes(path), `bangfu saw ${path}: ${added}`);
});

test('plain HTTP is redirected to https', async () => {
  const res = await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: plainPort, path: '/wecom/callback' },
      (r) => { r.resume(); r.on('end', () => resolve(r)); });
    req.on('error', reject);
    req.end();
  });
  assert.equal(res.statusCode, 301);
  assert.match(res.headers.location, /^https:\/\/.*\/wecom\/callback$/);
});
