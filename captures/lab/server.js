#!/usr/bin/env node
// @grpc/grpc-js server for the capture lab: the same generic service as server.py.
//   node server.js --listen H:P [--opt key=int ...]
//   /lab.Lab/Call   unary, request "lab ch=K rpc=N sleep=S": sleeps S s, answers "ok ..."
//   /lab.Lab/Stream server streaming, "... n=N every=S"
// Prints "ready" once listening; exits on SIGTERM/SIGINT.
'use strict';
const grpc = require('@grpc/grpc-js');

const args = { listen: null, opt: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--listen') args.listen = argv[i + 1];
  else if (argv[i] === '--opt') args.opt.push(argv[i + 1]);
  else throw new Error('unknown argument ' + argv[i]);
}
const options = {};
for (const o of args.opt) { const [k, v] = o.split('='); options[k] = Number(v); }

function params(buf) {
  const out = {};
  for (const w of buf.toString('ascii').split(/\s+/)) {
    const i = w.indexOf('=');
    if (i > 0) out[w.slice(0, i)] = w.slice(i + 1);
  }
  return out;
}

const ident = (b) => b;
const service = {
  Call: {
    path: '/lab.Lab/Call', requestStream: false, responseStream: false,
    requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident,
  },
  Stream: {
    path: '/lab.Lab/Stream', requestStream: false, responseStream: true,
    requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident,
  },
};

const server = new grpc.Server(options);
server.addService(service, {
  Call: (call, cb) => {
    const s = Math.min(Number(params(call.request).sleep || 0), 60);
    setTimeout(() => cb(null, Buffer.concat([Buffer.from('ok '), call.request])), s * 1000);
  },
  Stream: (call) => {
    const p = params(call.request);
    const n = Math.min(Number(p.n || 3), 100);
    const every = Math.min(Number(p.every || 1), 30);
    let i = 0;
    const tick = () => {
      if (call.cancelled) return;
      call.write(Buffer.concat([Buffer.from(`item ${i} of `), call.request]));
      i += 1;
      if (i >= n) call.end();
      else setTimeout(tick, every * 1000);
    };
    tick();
  },
});
server.bindAsync(args.listen, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(err.message); process.exit(1); }
  console.log('ready');
});
const stop = () => { server.forceShutdown(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, 600 * 1000).unref();
