// Verify X-Switchboard-Signature in a Node.js service (docs/signing.md). No dependencies.
//
//   const { verify } = require('./verify-signature.js');
//   const i = req.url.indexOf('?');  // raw target: no URL normalisation
//   const ok = verify({ method: req.method, host: req.headers.host,
//     path: i < 0 ? req.url : req.url.slice(0, i), query: i < 0 ? '' : req.url.slice(i + 1),
//     headers: req.headers }, process.env.SWITCHBOARD_SECRETS.split(','), 300);
//
// secrets: hex strings or Buffers (current and previous). Strings are taken as Node's
// http module gives them, one character per byte (latin1).
'use strict';
const crypto = require('node:crypto');

const SIGNED = ['x-request-id', 'traceparent', 'x-forwarded-for', 'x-forwarded-proto',
  'x-forwarded-host', 'x-tenant-slug', 'x-tenant-config', 'x-switchboard-environment',
  'x-switchboard-deployment'];
const trim = (s) => String(s ?? '').replace(/^[ \t]+|[ \t]+$/g, '');

function canonical(req, t) {
  const h = trim(req.host);
  const host = (h.startsWith('[') && h.includes(']') ? h.slice(0, h.indexOf(']') + 1)
    : h.split(':')[0]).replace(/[A-Z]+/g, (s) => s.toLowerCase());
  return ['switchboard-v1', t, req.method, host, req.path, req.query ?? '',
    ...SIGNED.map((n) => `${n}:${trim(req.headers[n])}`)].map((l) => `${l}\n`).join('');
}

const mac = (secret, req, t) => crypto.createHmac('sha256', typeof secret === 'string'
  ? Buffer.from(secret, 'hex') : secret).update(canonical(req, t), 'latin1').digest();

function verify(req, secrets, toleranceSeconds = 300, now = Date.now() / 1000) {
  let t = null;
  const sigs = [];
  for (const item of String(req.headers['x-switchboard-signature'] ?? '').split(',')) {
    const m = /^[ \t]*([^=]+)=(.*?)[ \t]*$/.exec(item);
    if (!m || (m[1] === 't' && (t !== null || !/^\d{1,19}$/.test(m[2])))) return false;
    if (m[1] === 't') t = m[2];
    if (m[1] === 'v1' && !/^[0-9a-fA-F]{64}$/.test(m[2])) return false;
    if (m[1] === 'v1') sigs.push(Buffer.from(m[2], 'hex'));
  }
  if (t === null || !sigs.length || sigs.length > 16) return false;
  if (Math.abs(now - Number(t)) > toleranceSeconds) return false;
  return secrets.some((s) => {
    const m = mac(s, req, t);
    return sigs.some((sig) => crypto.timingSafeEqual(m, sig));
  });
}

// The header value the edge would send (for tests): t=<t>,v1=<hex>[,v1=<hex>...].
const sign = (req, secrets, t) =>
  [`t=${t}`, ...secrets.map((s) => `v1=${mac(s, req, t).toString('hex')}`)].join(',');

module.exports = { verify, canonical, sign };

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
  console.log('verify-signature self-test: ok');
}
