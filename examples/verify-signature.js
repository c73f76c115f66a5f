// Verify X-Switchboard-Signature in a Node.js service (docs/signing.md). No dependencies.
//
//   const { verifyRequest } = require('./verify-signature.js');
//   const ok = verifyRequest(req, process.env.SWITCHBOARD_SECRETS.split(','), 300);
//
// req: an http.IncomingMessage (its raw target and raw headers are used). secrets: hex
// strings or Buffers (current and previous); empty strings are skipped, anything else
// that is not hex throws. verify(fields, ...) takes {method, host, path, query, headers}.
'use strict';
const crypto = require('node:crypto');

const SIGNED = ['x-request-id', 'traceparent', 'x-forwarded-for', 'x-forwarded-proto',
  'x-forwarded-host', 'x-tenant-slug', 'x-tenant-config', 'x-switchboard-environment',
  'x-switchboard-deployment'];
const trim = (s) => String(s ?? '').replace(/^[ \t]+|[ \t]+$/g, '');

function canonical(req, t) {
  const h = trim(req.host).replace(/[A-Z]/g, (c) => c.toLowerCase()); // ASCII only
  const host = h.startsWith('[') && h.includes(']') ? h.slice(0, h.indexOf(']') + 1)
    : h.split(':')[0];
  return ['switchboard-v1', t, req.method, host, req.path, req.query ?? '',
    ...SIGNED.map((n) => `${n}:${trim(req.headers[n])}`)].map((line) => `${line}\n`).join('');
}

// Buffer.from(s, 'hex') stops at the first non-hex character: "" or "0x.." would make
// an empty key, with which anyone can sign.
function key(secret) {
  if (Buffer.isBuffer(secret) && secret.length) return secret;
  if (/^([0-9a-f]{2})+$/i.test(secret)) return Buffer.from(secret, 'hex');
  throw new TypeError('a secret is a non-empty hex string or Buffer');
}

const mac = (secret, req, t) => crypto.createHmac('sha256', key(secret))
  .update(canonical(req, t), 'latin1').digest();

function verify(req, secrets, toleranceSeconds = 300, now = Math.floor(Date.now() / 1000)) {
  const keys = secrets.filter((s) => s !== '').map(key); // '': a trailing comma
  const items = String(req.headers['x-switchboard-signature'] ?? '').split(',')
    .map((item) => /^([^=]+)=(.*)$/.exec(trim(item)) ?? []);
  const t = items.filter(([, k]) => k === 't').map(([, , v]) => v);
  const sigs = items.filter(([, k]) => k === 'v1').map(([, , v]) => v);
  if (items.some((m) => !m.length) || t.length !== 1 || !/^(0|[1-9]\d{0,18})$/.test(t[0]) ||
    !sigs.length || sigs.length > 16 || !sigs.every((v) => /^[0-9a-f]{64}$/i.test(v)) ||
    Math.abs(now - Number(t[0])) > toleranceSeconds) return false;
  const macs = keys.map((k) => mac(k, req, t[0]));
  return macs.some((m) => sigs.some((v) => crypto.timingSafeEqual(m, Buffer.from(v, 'hex'))));
}

// A header sent twice is tampering (the edge sends each once); Node would join the copies.
function verifyRequest(req, secrets, toleranceSeconds, now) {
  const names = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  if (['x-switchboard-signature', 'host', ...SIGNED].some((n) =>
    names.indexOf(n) !== names.lastIndexOf(n))) return false;
  const [path, query = ''] = req.url.split(/\?(.*)/s); // the raw target, split at its first '?'
  return verify({ method: req.method, host: req.headers.host, path, query, headers: req.headers },
    secrets, toleranceSeconds, now);
}

// The header value the edge would send (for tests): t=<t>,v1=<hex>[,v1=<hex>...].
const sign = (req, secrets, t) =>
  [`t=${t}`, ...secrets.map((s) => `v1=${mac(s, req, t).toString('hex')}`)].join(',');

module.exports = { verify, verifyRequest, canonical, sign };

// node examples/verify-signature.js --self-test: the worked example of docs/signing.md.
if (require.main === module && process.argv[2] === '--self-test') {
  const assert = require('node:assert');
  const derive = (master) => crypto.createHmac('sha256', master)
    .update('switchboard-deployment-secret:codex-web-production').digest();
  const [cur, old] = [derive('example-master-key'), derive('example-previous-master-key')];
  const req = { method: 'POST', host: 'Acme.Revelations.Studio:8443', path: '/api/projects/42',
    query: 'include=owner&page=2', headers: { 'x-request-id': 'req-7f3a9c',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https',
      'x-forwarded-host': 'acme.revelations.studio', 'x-tenant-slug': 'acme',
      'x-switchboard-environment': 'production',
      'x-switchboard-deployment': 'codex-web-production' } };
  assert.strictEqual(cur.toString('hex'),
    'f6c9f8ac2bcd09f8861a5fcdc679046b7f08bb2a4c138bccbd6efc6fe6d70f0a');
  const header = sign(req, [cur], 1700000000);
  assert.strictEqual(header,
    't=1700000000,v1=4f44d975cebf480de90b35d9f4867667eb70640f61637c854b0e9a04a0a9fb11');
  const at = (h, secrets, now = 1700000000) => verify({ ...req, headers: { ...req.headers,
    'x-switchboard-signature': h } }, secrets, 300, now);
  assert.ok(at(header, [cur]) && at(header, [old, cur]) && at(header, [cur], 1700000300));
  assert.ok(!at(header, [old]) && !at(header, [cur], 1700000301) && !at('', [cur]));
  const both = sign(req, [cur, old], 1700000000);
  assert.ok(at(both, [old]) && at(both, [cur.toString('hex')]));
  assert.ok(!verify({ ...req, path: '/api/projects/43', headers: { ...req.headers,
    'x-switchboard-signature': header } }, [cur], 300, 1700000000));
  assert.ok(!at('t=01700000000,' + header.split(',')[1], [cur])); // digits as signed
  assert.throws(() => at(header, ['0x' + cur.toString('hex')]), TypeError);
  assert.ok(at(header, [cur.toString('hex'), '']) && !at(header, ['']));
  const headers = { ...req.headers, host: req.host, 'x-switchboard-signature': header };
  const raw = (extra) => ({ method: req.method, url: `${req.path}?${req.query}`, headers,
    rawHeaders: [...Object.entries(headers).flat(), ...extra] });
  assert.ok(verifyRequest(raw([]), [cur], 300, 1700000000));
  assert.ok(!verifyRequest(raw(['x-switchboard-signature', header]), [cur], 300, 1700000000));
  assert.ok(!verifyRequest(raw(['X-Tenant-Slug', 'acme']), [cur], 300, 1700000000));
  console.log('verify-signature self-test: ok');
}
