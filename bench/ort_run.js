#!/usr/bin/env node
// bench/ort_run.js - one ONNX Runtime measurement for bench/compare_ort.py: load an ONNX
// TimeSformer into onnxruntime-node (CPU), run it on an input file, check its logits, time it.
//
// Session options: graphOptimizationLevel 'all' (--opt), intraOpNumThreads --threads,
// interOpNumThreads 1, executionMode 'sequential'. The first run's logits go to --out and are
// compared with --ref (the library's logits on the same weights and input): the JSON line gets
// the largest absolute difference and the largest |ref|. With --reps N > 0 it then times
// session.run as bench_model.c times the library: --warmup runs (the first is the checked
// one), then N repetitions, each a loop of runs lasting at least --min-ms (the loop's count
// set from the last warm-up run); the median per run.
//
// Peak RSS: VmHWM of /proc/self/status at the end (node, the ORT library, the model and its
// buffers); rss_base_mb is VmRSS before the session is made (node and the ORT library).
//
//   node bench/ort_run.js --model M.onnx --input X.bin --shape 4,3,8,112,112 --threads 2 \
//       [--out LOGITS.bin] [--ref LOGITS.bin] [--reps 7] [--warmup 2] [--min-ms 100]
//   node bench/ort_run.js --version
//
// onnxruntime-node is looked for in $ORT_DIR/node_modules (default build/ort/node_modules
// beside this folder), then where node looks by itself. Install it there with
//   mkdir -p build/ort && cd build/ort &&
//       ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function loadOrt() {
  const dirs = [process.env.ORT_DIR, path.join(__dirname, '..', 'build', 'ort')].filter(Boolean);
  for (const d of dirs) {
    try {
      return require(require.resolve('onnxruntime-node', { paths: [path.resolve(d)] }));
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  return require('onnxruntime-node');
}

function statusMb(key) {
  try {
    for (const ln of fs.readFileSync('/proc/self/status', 'utf8').split('\n'))
      if (ln.startsWith(key)) return parseFloat(ln.slice(key.length)) / 1024;
  } catch (e) { /* no /proc */ }
  return key === 'VmHWM:' ? process.resourceUsage().maxRSS / 1024 : -1;
}

function readFloats(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function parseArgs(argv) {
  const a = { threads: 1, reps: 0, warmup: 2, minMs: 100, opt: 'all', spin: '' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    const take = () => {
      i++;
      if (v === undefined) throw new Error('missing value of ' + k);
      return v;
    };
    if (k === '--version') a.version = true;
    else if (k === '--model') a.model = take();
    else if (k === '--input') a.input = take();
    else if (k === '--shape') a.shape = take().split(',').map(Number);
    else if (k === '--threads') a.threads = parseInt(take(), 10);
    else if (k === '--out') a.out = take();
    else if (k === '--ref') a.ref = take();
    else if (k === '--reps') a.reps = parseInt(take(), 10);
    else if (k === '--warmup') a.warmup = Math.max(1, parseInt(take(), 10));
    else if (k === '--min-ms') a.minMs = parseFloat(take());
    else if (k === '--opt') a.opt = take();
    else if (k === '--spin') a.spin = take(); // '0' or '1': session.intra_op.allow_spinning
    else throw new Error('unknown option ' + k);
  }
  return a;
}

async function main() {
  const a = parseArgs(process.argv);
  const ort = loadOrt();
  const versions = { ort: ort.env.versions.common, node: process.versions.node };
  if (a.version) {
    console.log(JSON.stringify(versions));
    return 0;
  }
  if (!a.model || !a.input || !a.shape) throw new Error('--model, --input and --shape are needed');
  const load1 = os.loadavg()[0];
  const rssBase = statusMb('VmRSS:');
  const opts = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: a.opt,
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  if (a.spin !== '') opts.extra = { session: { intra_op: { allow_spinning: a.spin } } };
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, opts);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssSession = statusMb('VmRSS:');
  const x = readFloats(a.input);
  if (x.length !== a.shape.reduce((p, q) => p * q, 1))
    throw new Error(`${a.input}: ${x.length} floats, shape ${a.shape} wants another count`);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, a.shape) };
  const outName = session.outputNames[0];

  const run = async () => (await session.run(feeds))[outName];
  let t = process.hrtime.bigint();
  const y = await run();
  let last = Number(process.hrtime.bigint() - t) / 1e6;
  const logits = y.data;
  for (const v of logits) if (!Number.isFinite(v)) throw new Error('logits not finite');
  if (a.out)
    fs.writeFileSync(a.out, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  let maxErr = null, refMax = null;
  if (a.ref) {
    const r = readFloats(a.ref);
    if (r.length !== logits.length)
      throw new Error(`${a.ref}: ${r.length} logits, ORT gave ${logits.length}`);
    maxErr = 0, refMax = 0;
    for (let i = 0; i < r.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(logits[i] - r[i]));
      refMax = Math.max(refMax, Math.abs(r[i]));
    }
  }
  let ms = last, msMin = last, iters = 1;
  if (a.reps > 0) {
    for (let w = 1; w < a.warmup; w++) {
      t = process.hrtime.bigint();
      await run();
      last = Number(process.hrtime.bigint() - t) / 1e6;
    }
    iters = last < a.minMs ? Math.min(1000000, Math.ceil(a.minMs / (last + 1e-9))) : 1;
    const times = [];
    for (let r = 0; r < a.reps; r++) {
      t = process.hrtime.bigint();
      for (let k = 0; k < iters; k++) await run();
      times.push(Number(process.hrtime.bigint() - t) / 1e6 / iters);
    }
    times.sort((p, q) => p - q);
    const n = times.length;
    ms = n % 2 ? times[(n - 1) / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    msMin = times[0];
  }
  const B = a.shape[0];
  console.log(JSON.stringify({
    bench: 'ort', impl: 'ort', threads: a.threads, inter_op: 1, execution_mode: 'sequential',
    graph_opt: a.opt, spin: a.spin === '' ? 'default' : a.spin,
    B, T: a.shape[2], H: a.shape[3], W: a.shape[4], classes: logits.length / B,
    ms: +ms.toFixed(4), ms_min: +msMin.toFixed(4), ms_per_clip: +(ms / B).toFixed(4),
    peak_rss_mb: +statusMb('VmHWM:').toFixed(1), rss_base_mb: +rssBase.toFixed(1),
    rss_session_mb: +rssSession.toFixed(1), session_ms: +loadMs.toFixed(1),
    reps: a.reps, iters, warmup: a.warmup, timed: a.reps > 0, load1: +load1.toFixed(2),
    max_abs_err: maxErr, ref_max_abs: refMax, ...versions,
  }));
  return 0;
}

main().then((rc) => { process.exitCode = rc; }, (e) => {
  console.error('ort_run: ' + (e && e.message ? e.message : e));
  process.exitCode = 1;
});
