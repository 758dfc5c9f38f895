#!/usr/bin/python3
"""bench/compare_pytorch.py - timesformer.h against PyTorch on the same CPU, in the same run.

OPTIONAL: it runs only when /usr/bin/python3 has torch (Debian: apt-get install python3-torch
python3-numpy, PyTorch 1.13 with OpenBLAS). Without it, it says so and exits with status 0.
The library and its tests never need Python.

WHAT IT DOES

  1. Checks that its PyTorch model is the library's architecture: for each attention variant,
     `bench_model --export` writes the tiny config's weights (safetensors, Hugging Face names),
     an input, the logits, and the logits after one SGD step; this script loads the weights
     into its own model (below), computes the same and fails unless they agree (1e-4 of the
     largest logit).
  2. Times the configs of bench_model.c (small: 112^2, patch 16, 8 frames, D 192, depth 4,
     3 heads, batch 4; vitb: ViT-B/16 at 8 x 224^2, batch 1) for each variant, inference
     (a forward pass under torch.inference_mode) and a training step (zero_grad, forward,
     cross-entropy, backward, torch.optim.SGD momentum 0.9 Nesterov weight decay 1e-4, the
     library's tsf_sgd_default), in PyTorch at each of its thread settings, intra-op threads
     (torch.set_num_threads, OMP_NUM_THREADS) x OpenBLAS threads (OPENBLAS_NUM_THREADS):
     1x1, 1x2, 2x1, 2x2; and the library (build/bench_model --one) at 1 and 2 threads, in
     its modes infer, train and lean (lean: the library's training step in the least memory,
     cfg.recompute + cfg.fused_sgd, timed beside train and compared with PyTorch's train).
     Every measurement is its own process (peak RSS = that process's VmHWM, Python and torch
     included); the runs of one config/variant/mode follow each other, interleaved,
     the order reversed from one group to the next so that no setting always goes first.
  3. Prints one JSON line per measurement, one "compare" JSON line per config/variant/mode
     and a table: times, PyTorch's best setting, and the ratios
         time  = tsf at 2 threads / PyTorch at its best setting (< 1: tsf is faster)
         mem   = tsf's peak RSS at 2 threads / PyTorch's at that best setting
         1 thr = tsf at 1 thread / PyTorch 1x1.

  Timing is as in bench_model: a warm-up call, then REPS calls (small 7, vitb 3; --quick 3, 1),
  each repetition a loop lasting at least 100 ms; the median per call.

RUN (from the repository root)

    make bench-pytorch                        (builds build/bench_model first)
    /usr/bin/python3 bench/compare_pytorch.py [--quick] [--configs small,vitb]
        [--variants divided,joint,space] [--modes infer,train,lean] [--settings 1x1,1x2,2x1,2x2]
        [--tsf-threads 1,2] [--reps N] [--rounds N] [--check-only] [--bench PATH]

  The full run (small and vitb) takes 20 to 40 minutes on 2 cores; --quick runs the small
  config only. The machine's other work disturbs the timings: every JSON line carries the
  load average, and the header line gives it at the start.

  The PyTorch model is this repository's own (no torchvision, timm or einops), shared with
  tests/golden/make_golden.py: the layers of docs/model.md section 3 with nn.Linear,
  nn.LayerNorm, nn.Conv2d and the attention written out (q.k^T * scale, softmax, .v;
  docs/model.md section 4).
"""
import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The configurations of bench_model.c: image, patch, frames, dim, depth, heads, classes, batch,
# repetitions (full, --quick).
CONFIGS = {
    "tiny": dict(image=32, patch=8, frames=4, dim=32, depth=2, heads=2, classes=5, batch=2,
                 reps=7, quick_reps=3),
    "small": dict(image=112, patch=16, frames=8, dim=192, depth=4, heads=3, classes=10, batch=4,
                  reps=7, quick_reps=3),
    "vitb": dict(image=224, patch=16, frames=8, dim=768, depth=12, heads=12, classes=400,
                 batch=1, reps=3, quick_reps=1),
}
VARIANTS = {"divided": "divided_space_time", "joint": "joint_space_time", "space": "space_only"}
PEAK_PER_CORE = 117.0  # GFLOP/s, as bench_model.c


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return -1.0


def peak_rss_mb():
    """Peak RSS of this process: VmHWM (ru_maxrss survives exec on Linux: a process started
    by this script would report this script's own size, torch included, as its peak)."""
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return float(ln.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ------------------------------------------------------------------------------ the model
# The model, its Hugging Face names and the safetensors reader live in tests/golden/make_golden.py,
# which also runs this model in float64 to make the golden files; they stay importable from here
# (compare_pytorch.make_model, .load_safetensors, .hf_to_local, .HF_TOP, .HF_BLOCK).
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
_write_bytecode = sys.dont_write_bytecode
sys.dont_write_bytecode = True  # no __pycache__ among the golden folders (test_cli.sh runs each)
from make_golden import (HF_BLOCK, HF_TOP, hf_to_local, load_safetensors,  # noqa: E402,F401
                         make_model)
sys.dont_write_bytecode = _write_bytecode


def train_step(torch, model, opt, x, labels):
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), labels)
    loss.backward()
    opt.step()
    return loss


def make_sgd(torch, model, lr):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                           weight_decay=1e-4)


# ------------------------------------------------------------------------------ the check
def check_variant(torch, bench, variant):
    """The library's tiny model, exported, against this file's model; returns a message."""
    import numpy as np
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([bench, "--export", d, "--variant", variant], capture_output=True,
                           text=True)
        if r.returncode != 0:
            return "bench_model --export failed: " + r.stderr.strip()
        meta = json.loads(open(os.path.join(d, "meta.json")).read())
        c = dict(image=meta["image"], patch=meta["patch"], frames=meta["frames"],
                 dim=meta["dim"], depth=meta["depth"], heads=meta["heads"],
                 classes=meta["classes"], batch=meta["batch"])
        B, K, T, S = c["batch"], c["classes"], c["frames"], c["image"]
        model = make_model(torch, c, variant)
        sd = {hf_to_local(k): v for k, v in load_safetensors(torch, os.path.join(d,
                                                                    "model.safetensors")).items()}
        own = model.state_dict()
        if set(sd) != set(own):
            return "parameter names differ: %s" % sorted(set(sd) ^ set(own))
        model.load_state_dict({k: v.reshape(own[k].shape) for k, v in sd.items()})
        x = torch.from_numpy(np.fromfile(os.path.join(d, "input.bin"), dtype="<f4").copy())
        x = x.reshape(B, 3, T, S, S)
        labels = torch.from_numpy(np.fromfile(os.path.join(d, "labels.bin"),
                                              dtype="<i4").astype("int64"))
        want0 = np.fromfile(os.path.join(d, "logits0.bin"), dtype="<f4").reshape(B, K)
        want1 = np.fromfile(os.path.join(d, "logits1.bin"), dtype="<f4").reshape(B, K)
        opt = make_sgd(torch, model, meta["lr"])
        with torch.no_grad():
            got0 = model(x).numpy()
        train_step(torch, model, opt, x, labels)
        with torch.no_grad():
            got1 = model(x).numpy()
        for what, got, want in (("logits", got0, want0), ("logits after one SGD step", got1,
                                                           want1)):
            err = float(np.abs(got - want).max())
            tol = 1e-4 * float(np.abs(want).max()) + 1e-6
            if not err <= tol:
                return "%s differ by %.3g (tolerance %.3g)" % (what, err, tol)
    return None


# ------------------------------------------------------------------------------ the worker
def worker(args):
    """One PyTorch measurement in this process; the parent set the thread variables."""
    import torch
    torch.set_num_threads(args.intra)
    rss_import = peak_rss_mb()
    c = CONFIGS[args.config]
    variant = VARIANTS.get(args.variant, args.variant)
    B, T, S, K = c["batch"], c["frames"], c["image"], c["classes"]
    torch.manual_seed(0)
    model = make_model(torch, c, variant)
    x = torch.randn(B, 3, T, S, S)
    labels = torch.arange(B) % K
    train = args.mode == "train"
    if train:
        model.train()
        opt = make_sgd(torch, model, 1e-3)
        call = lambda: train_step(torch, model, opt, x, labels)  # noqa: E731
    else:
        model.eval()

        def call():
            with torch.inference_mode():
                return model(x)

    t0 = time.perf_counter()
    out = call()
    first = time.perf_counter() - t0
    if not bool(torch.isfinite(out).all()):
        print("compare_pytorch: not finite", file=sys.stderr)
        return 1
    for _ in range(1, args.warmup):
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
    iters = max(1, math.ceil(args.min_ms / (first * 1e3 + 1e-9)))
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        times.append((time.perf_counter() - t0) / iters)
    times.sort()
    ms = 1e3 * (times[len(times) // 2] if len(times) % 2 else
                0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2]))
    print(json.dumps(dict(bench="model", impl="torch", config=args.config, variant=variant,
                          mode=args.mode, intra=args.intra, blas=args.blas,
                          threads=max(args.intra, args.blas), B=B, T=T, H=S, W=S,
                          ms=round(ms, 4), ms_min=round(1e3 * times[0], 4),
                          ms_per_clip=round(ms / B, 4), peak_rss_mb=round(peak_rss_mb(), 1),
                          rss_import_mb=round(rss_import, 1), reps=args.reps, iters=iters,
                          warmup=max(1, args.warmup), load1=load_average(),
                          torch=torch.__version__)), flush=True)
    return 0


# ------------------------------------------------------------------------------ the driver
def run_json(cmd, env=None):
    """Run one measurement process; its first JSON line, or None (the error goes to stderr)."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        print("compare_pytorch: failed (status %d): %s" % (r.returncode, " ".join(cmd)),
              file=sys.stderr)
        return None
    return json.loads(lines[0])


def tsf_cmd(bench, config, variant, mode, threads, reps):
    return [bench, "--one", "--config", config, "--variant", variant, "--mode", mode,
            "--threads", str(threads), "--reps", str(reps)]


def torch_cmd(config, variant, mode, intra, blas, reps):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(intra), OPENBLAS_NUM_THREADS=str(blas),
               MKL_NUM_THREADS=str(blas))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--config", config,
           "--variant", variant, "--mode", mode, "--intra", str(intra), "--blas", str(blas),
           "--reps", str(reps)]
    return cmd, env


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--configs", default=None)
    ap.add_argument("--variants", default="divided,joint,space")
    ap.add_argument("--modes", default="infer,train,lean")
    ap.add_argument("--settings", default="1x1,1x2,2x1,2x2",
                    help="PyTorch intra-op threads x OpenBLAS threads")
    ap.add_argument("--tsf-threads", default="1,2")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every group's interleaved runs; medians over rounds")
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench_model"))
    # worker mode (internal)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", default="small", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="divided", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="infer", help=argparse.SUPPRESS)
    ap.add_argument("--intra", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--blas", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--min-ms", type=float, default=100.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    try:
        import torch
    except ImportError:
        print("compare_pytorch: %s has no torch (Debian: apt-get install python3-torch "
              "python3-numpy); nothing to compare" % sys.executable)
        return 0
    if not os.access(args.bench, os.X_OK):
        print("compare_pytorch: %s not found: make build/bench_model first" % args.bench,
              file=sys.stderr)
        return 2
    configs = (args.configs or ("small" if args.quick else "small,vitb")).split(",")
    variants = [VARIANTS.get(v, v) for v in args.variants.split(",")]
    modes = args.modes.split(",")
    settings = [tuple(int(n) for n in s.split("x")) for s in args.settings.split(",")]
    tsf_threads = [int(n) for n in args.tsf_threads.split(",")]
    for c in configs:
        if c not in CONFIGS:
            ap.error("unknown config " + c)
    for v in variants:
        if v not in VARIANTS.values():
            ap.error("unknown variant " + v)

    m = re.search(r"BLAS_INFO=([^\s,]+)", torch.__config__.show())
    blas = "BLAS_INFO=%s" % (m.group(1) if m else "unknown")
    lib = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    if os.path.exists(lib):  # Debian's alternatives: which BLAS "generic" is
        blas += ", libblas.so.3 -> " + os.path.realpath(lib)
    # the ISA each side runs at: PyTorch's own kernels follow ATEN_CPU_CAPABILITY and
    # OpenBLAS's OPENBLAS_CORETYPE (e.g. avx2 and Haswell, to compare a library built with
    # -mavx2 -mfma on an AVX-512 machine); the library's is in each of its JSON lines ("simd")
    isa = ", ".join("%s=%s" % (k, os.environ.get(k, "(unset)"))
                    for k in ("ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE"))
    print("# compare_pytorch: torch %s (%s), python %s, bench %s, settings intra x blas %s, "
          "tsf threads %s, rounds %d, %s, load average %.2f" % (
              torch.__version__, blas, sys.version.split()[0], args.bench,
              args.settings, args.tsf_threads, args.rounds, isa, load_average()), flush=True)

    failed = 0
    for v in variants:  # 1. the same architecture
        msg = check_variant(torch, args.bench, v)
        if msg:
            print("[FAIL] %s: this PyTorch model and timesformer.h disagree: %s" % (v, msg))
            failed += 1
        else:
            print("[PASS] %s: PyTorch model = timesformer.h (logits, and after one SGD step)" % v)
    sys.stdout.flush()
    if failed:
        return 1
    if args.check_only:
        return 0

    results = []  # one dict per config/variant/mode
    group = 0
    for cname in configs:
        c = CONFIGS[cname]
        reps = args.reps or (c["quick_reps"] if args.quick else c["reps"])
        for v in variants:
            for mode in modes:
                if mode == "lean":  # timed within "train", against the same PyTorch runs
                    continue
                kinds = ["tsf"] + (["lean"] if mode == "train" and "lean" in modes else [])
                runs = [(k, t) for k in kinds for t in tsf_threads] + \
                       [("torch", s) for s in settings]
                got = {r: [] for r in runs}
                for rnd in range(args.rounds):
                    order = runs if (group + rnd) % 2 == 0 else runs[::-1]
                    for r in order:
                        if r[0] != "torch":
                            j = run_json(tsf_cmd(args.bench, cname, v,
                                                 "lean" if r[0] == "lean" else mode, r[1], reps))
                        else:
                            cmd, env = torch_cmd(cname, v, mode, r[1][0], r[1][1], reps)
                            j = run_json(cmd, env)
                        if j is None:
                            failed += 1
                            continue
                        j["round"] = rnd
                        print(json.dumps(j), flush=True)
                        got[r].append(j)
                group += 1
                for kind in kinds:
                    hashes = {(j["hash_logits"], j["hash_grads"]) for r in runs if r[0] == kind
                              for j in got[r]}
                    if len(hashes) > 1:  # the header promises bit-identical results
                        print("compare_pytorch: FAIL: %s %s %s: timesformer.h gives different "
                              "results at different thread counts: %s" % (
                                  cname, v, kind if kind == "lean" else mode, sorted(hashes)),
                              file=sys.stderr)
                        failed += 1
                med = {r: (median([j["ms"] for j in got[r]]), max(j["peak_rss_mb"] for j in got[r]))
                       for r in runs if got[r]}
                tor = {r: m for r, m in med.items() if r[0] == "torch"}
                if not tor:
                    continue
                best = min(tor, key=lambda r: tor[r][0])
                for kind in kinds:  # one row for the library's train, one for its lean step
                    res = dict(bench="compare", config=cname, variant=v,
                               mode="lean" if kind == "lean" else mode, B=c["batch"],
                               torch_best="%dx%d" % best[1], torch_best_ms=round(tor[best][0], 3),
                               torch_best_rss_mb=tor[best][1])
                    for r, (ms, rss) in med.items():
                        if r[0] not in (kind, "torch"):
                            continue
                        key = "tsf_%dt" % r[1] if r[0] == kind else "torch_%dx%d" % r[1]
                        res[key + "_ms"], res[key + "_rss_mb"] = round(ms, 3), rss
                    for t in tsf_threads:
                        if (kind, t) in med:
                            res["ratio_time_%dt" % t] = round(med[(kind, t)][0] / tor[best][0], 3)
                            res["ratio_mem_%dt" % t] = round(med[(kind, t)][1] / tor[best][1], 3)
                    if (kind, 1) in med and ("torch", (1, 1)) in med:
                        res["ratio_time_1t_vs_torch_1x1"] = round(
                            med[(kind, 1)][0] / med[("torch", (1, 1))][0], 3)
                    print(json.dumps(res), flush=True)
                    results.append(res)

    # the table
    setk = ["torch_%dx%d" % s for s in settings]
    print("\n%-5s %-18s %-5s %9s %9s | %s | %-5s %6s %6s | %7s %7s %6s" % (
        "conf", "variant", "mode", "tsf 1t", "tsf 2t",
        " ".join("%9s" % ("pt " + s.split("_")[1]) for s in setk), "best",
        "t/best", "1t/1x1", "tsf MB", "pt MB", "mem"))
    for r in results:
        def ms(k):
            return "%9.1f" % r[k + "_ms"] if k + "_ms" in r else "%9s" % "-"
        print("%-5s %-18s %-5s %s %s | %s | %-5s %6s %6s | %7s %7.0f %6s" % (
            r["config"], r["variant"], r["mode"], ms("tsf_1t"), ms("tsf_2t"),
            " ".join(ms(k) for k in setk), r["torch_best"],
            "%.2f" % r["ratio_time_2t"] if "ratio_time_2t" in r else "-",
            "%.2f" % r["ratio_time_1t_vs_torch_1x1"] if "ratio_time_1t_vs_torch_1x1" in r
            else "-",
            "%.0f" % r["tsf_2t_rss_mb"] if "tsf_2t_rss_mb" in r else "-",
            r["torch_best_rss_mb"],
            "%.2f" % r["ratio_mem_2t"] if "ratio_mem_2t" in r else "-"))
    print("ms per call (a batch: small B = 4, vitb B = 1; train = one SGD step; lean = the "
          "library's SGD step with recompute and fused SGD, against PyTorch's train), medians; "
          "pt IxB = PyTorch with I intra-op threads and B OpenBLAS threads; best = PyTorch's "
          "fastest setting; t/best = tsf 2 threads / best (< 1: tsf faster); 1t/1x1 = tsf 1 "
          "thread / PyTorch 1x1; MB = peak RSS of the process (tsf at 2 threads, PyTorch at "
          "its best); mem = their ratio")
    if failed:
        print("compare_pytorch: %d measurement(s) failed" % failed, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
