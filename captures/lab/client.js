#!/usr/bin/env node
// @grpc/grpc-js client for the capture lab: the same plan language as client.py.
//   node client.js --target H:P --plan JSON --log FILE [--opt key=int ...] [--tls-ca FILE]
// Each channel is its own grpc.Client with a local subchannel pool, so its own TCP connection.
// Steps: rpc[:sleep=S][:deadline=D], stream:n=N:every=S, idle:S, at:T, close, hold.
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

function parseArgs(argv) {
  const a = { opt: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--target') { a.target = v; i++; }
    else if (k === '--plan') { a.plan = JSON.parse(v); i++; }
    else if (k === '--log') { a.log = v; i++; }
    else if (k === '--opt') { a.opt.push(v); i++; }
    else if (k === '--tls-ca') { a.tlsCa = v; i++; }
    else if (k === '--tls-name') { a.tlsName = v; i++; }
    else throw new Error('unknown argument ' + k);
  }
  return a;
}

function parseStep(s) {
  const [name, ...rest] = s.split(':');
  const kv = {};
  for (const r of rest) {
    if (r.includes('=')) { const [k, v] = r.split('='); kv[k] = Number(v); }
    else kv.s = Number(r);
  }
  return [name, kv];
}

const ident = (b) => b;
const now = () => Date.now() / 1000;
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
const held = [];
const log = [];
let stopping = false;

async function runChannel(c, args, options, creds) {
  const tStart = now();
  await sleep(c.start || 0);
  const client = new grpc.Client(args.target, creds, options);
  let n = 0;
  for (const s of c.steps) {
    if (stopping) return;
    const [name, kv] = parseStep(s);
    if (name === 'rpc' || name === 'stream') {
      n += 1;
      const dl = kv.deadline !== undefined ? kv.deadline : 5;
      const entry = { ch: c.ch, rpc: n, kind: name, start: now() };
      const deadline = new Date(Date.now() + dl * 1000);
      await new Promise((resolve) => {
        if (name === 'rpc') {
          const req = Buffer.from(`lab ch=${c.ch} rpc=${n} sleep=${kv.sleep || 0}`);
          client.makeUnaryRequest('/lab.Lab/Call', ident, ident, req, new grpc.Metadata(), { deadline },
            (err) => {
              entry.status = err ? grpc.status[err.code] : 'OK';
              if (err) entry.details = err.details;
              resolve();
            });
        } else {
          const req = Buffer.from(`lab ch=${c.ch} rpc=${n} n=${kv.n || 3} every=${kv.every || 1}`);
          const call = client.makeServerStreamRequest('/lab.Lab/Stream', ident, ident, req, new grpc.Metadata(), { deadline });
          entry.messages = 0;
          call.on('data', () => { entry.messages += 1; });
          call.on('error', (err) => { entry.status = grpc.status[err.code]; entry.details = err.details; });
          call.on('status', (st) => { if (!entry.status) entry.status = grpc.status[st.code]; resolve(); });
        }
      });
      entry.end = now();
      log.push(entry);
    } else if (name === 'idle') {
      await sleep(kv.s);
    } else if (name === 'at') {
      await sleep(Math.max(0, tStart + kv.s - now()));
    } else if (name === 'close') {
      client.close();
      log.push({ ch: c.ch, closed: now() });
      return;
    } else if (name === 'hold') {
      held.push(client);
      return;
    }
  }
}

function finish(args) {
  log.sort((a, b) => (a.ch - b.ch) || ((a.rpc || 99) - (b.rpc || 99)));
  fs.writeFileSync(args.log, JSON.stringify(log, null, 1));
  // Leave channels open: the lab stops tcpdump before it stops this process.
  process.exit(0);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = { 'grpc.use_local_subchannel_pool': 1 };
  for (const o of args.opt) { const [k, v] = o.split('='); options[k] = Number(v); }
  let creds = grpc.credentials.createInsecure();
  if (args.tlsCa) {
    creds = grpc.credentials.createSsl(fs.readFileSync(args.tlsCa));
    options['grpc.ssl_target_name_override'] = args.tlsName || 'lab.server';
    options['grpc.default_authority'] = args.tlsName || 'lab.server';
  }
  process.on('SIGTERM', () => { stopping = true; finish(args); });
  process.on('SIGINT', () => { stopping = true; finish(args); });
  setTimeout(() => finish(args), 600 * 1000).unref();
  console.log('started');
  await Promise.all(args.plan.map((c) => runChannel(c, args, options, creds)));
  console.log('done');
  setInterval(() => {}, 1000); // stay up (holding channels) until told to stop
}

main();
