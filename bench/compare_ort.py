#!/usr/bin/python3
"""bench/compare_ort.py - timesformer.h against ONNX Runtime on the same CPU, in the same run.

OPTIONAL: it needs node with the npm package onnxruntime-node (its CPU binding), and
/usr/bin/python3 with torch (Debian: apt-get install python3-torch python3-numpy) to export
the ONNX models, or models exported by an earlier run in build/ort/models. Where something is
missing it says what and how to get it, and exits with status 0. The library and its tests
never need Python or node. Install onnxruntime-node in a folder of its own (never committed):

    mkdir -p build/ort && cd build/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node

(ONNXRUNTIME_NODE_INSTALL=skip skips the CUDA download; the CPU binding is in the package.)

WHAT IT DOES

  1. Models (build/ort/models/CONFIG_VARIANT.*), for the configs of bench_model.c and
     bench/compare_pytorch.py (tiny, small, vitb: compare_pytorch.CONFIGS, batch included) and
     the attention variants divided, joint, space: build/ort_check --init writes the library's
     model (tsf_model_init seed 42; temporal_fc and the time embedding given small random
     values, as bench_model --export does, so that the check covers them) as safetensors;
     compare_pytorch.py's own PyTorch model (make_model) loads it (load_safetensors) and
     torch.onnx.export writes it in eval mode (opset 17, constant folding, a fixed input
     shape (B, 3, T, S, S)). An export is kept and reused (without torch too) while its
     .json says it was made from the same config; --reexport makes them again.
  2. The check, before any timing: build/ort_check --run loads the safetensors with
     tsf_model_load and runs tsf_model_forward on an input of its own (tsf_rng seed 7),
     writing the input and the logits; node bench/ort_run.js runs the ONNX model on the same
     input at each thread count and compares: the largest difference must be within
     --tol (1e-5) of the largest |logit|. A variant that fails is not timed, and (with torch)
     compare_pytorch's model in eval mode runs on the same weights and input to tell whether
     the export and ORT or the model is at fault (--torch-check: for every variant; ViT-B in
     PyTorch takes minutes where libblas.so.3 is the reference BLAS). Every timed ORT process
     checks its first run's logits again.
  3. Times inference, a forward pass of a batch (small B = 4, vitb B = 1, tiny B = 2), each
     measurement its own process, interleaved: the library (build/ort_check --run --time,
     OMP_NUM_THREADS = 1, 2, OMP_WAIT_POLICY=passive) and ONNX Runtime (node
     bench/ort_run.js: graphOptimizationLevel 'all', intraOpNumThreads 1, 2,
     interOpNumThreads 1, executionMode 'sequential'), on the same weights and input. Each
     process: --warmup runs (the first checked), then REPS repetitions (tiny and small 7, vitb
     3; --quick 3, 3, 1), each a loop lasting at least 100 ms; the median per run. --rounds
     rounds (3; --quick 2), the order reversed from one round and group to the next; the
     median over rounds; the peak RSS (VmHWM) is the largest over rounds.
  4. Prints one JSON line per measurement (with the load average when the process started,
     "load1", and when it ended, "load1_end"), one "compare" JSON line per config / variant /
     thread count, and a table: times, ratio = library time / ORT time (< 1: the library is
     faster), the same ratio of the fastest repetitions (less disturbed by other work), peak
     RSS of each process (ORT's also without what node and the ORT library take before the
     model is loaded, about 51 MB) and their ratio.

RUN (from the repository root)

    make bench-ort                            (builds build/ort_check first)
    /usr/bin/python3 bench/compare_ort.py [--quick] [--configs small,vitb]
        [--variants divided,joint,space] [--threads 1,2] [--reps N] [--rounds N]
        [--check-only] [--export-only] [--reexport] [--tol 1e-5] [--torch-check]
        [--ort-spin 0|1] [--pack]

  --pack: the library packs its matrices once after loading (tsf_model_pack_weights), as
  ORT packs its weights when it creates a session; without it, each product packs its
  weight as it goes (half the memory).

  --quick runs the tiny config (under a minute); the default, small and vitb, takes 10 to 20
  minutes on 2 cores, plus the exports, once (ViT-B: 1 to 3 minutes and 4.4 GB of memory
  each; the files of all of build/ort/models take 2.4 GB). Other work on the machine
  disturbs the timings, the 2-thread ones most: compare the load averages.
"""
import argparse
import array
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare_pytorch as CP  # noqa: E402  (its names: CONFIGS, VARIANTS, make_model, ...)

OPSET = 17
MODEL_KEYS = ("image", "patch", "frames", "dim", "depth", "heads", "classes", "batch")
INSTALL = ("mkdir -p build/ort && cd build/ort && ONNXRUNTIME_NODE_INSTALL=skip "
           "npm install onnxruntime-node")


def say(msg):
    print("compare_ort: " + msg, flush=True)


def load_average():
    return CP.load_average()


def cpu_isa():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return "unknown"
    return next((isa for isa in ("avx512f", "avx2", "sse4_2") if isa in flags), "none")


def short_variant(v):
    for k, full in CP.VARIANTS.items():
        if v in (k, full):
            return k
    raise KeyError(v)


def run_cmd(cmd, env=None):
    """Run a process; (its first JSON line or None, stderr, status)."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    return (json.loads(lines[0]) if lines else None), r.stderr.strip(), r.returncode


# ------------------------------------------------------------------------------ the models
class Model:
    def __init__(self, models_dir, cname, v):
        self.config, self.variant, self.full = cname, v, CP.VARIANTS[v]
        self.c = CP.CONFIGS[cname]
        base = os.path.join(models_dir, "%s_%s" % (cname, v))
        self.safetensors, self.onnx = base + ".safetensors", base + ".onnx"
        self.meta = base + ".json"
        self.shape = (self.c["batch"], 3, self.c["frames"], self.c["image"], self.c["image"])
        self.want = {k: self.c[k] for k in MODEL_KEYS}

    def ready(self):
        """The export is there and made from this config."""
        try:
            with open(self.meta) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return False
        return (meta.get("config") == self.want and meta.get("variant") == self.full and
                os.path.exists(self.onnx) and os.path.exists(self.safetensors))

    def export(self, torch, check_bin):
        c = self.c
        cmd = [check_bin, "--init", self.safetensors, "--variant", self.full]
        for k in ("image", "patch", "frames", "dim", "depth", "heads", "classes"):
            cmd += ["--" + k, str(c[k])]
        j, err, rc = run_cmd(cmd)
        if rc != 0 or j is None:
            raise RuntimeError("ort_check --init failed: " + err)
        model = self.torch_model(torch)
        tmp = self.onnx + ".tmp"
        torch.onnx.export(model, (torch.randn(*self.shape),), tmp, input_names=["x"],
                          output_names=["logits"], opset_version=OPSET, do_constant_folding=True)
        os.replace(tmp, self.onnx)
        with open(self.meta, "w") as f:
            json.dump(dict(config=self.want, variant=self.full, torch=torch.__version__,
                           opset=OPSET, params=j.get("params")), f)
            f.write("\n")

    def torch_model(self, torch):
        """compare_pytorch's model with the library's weights, in eval mode."""
        model = CP.make_model(torch, self.c, self.full)
        sd = {CP.hf_to_local(k): t for k, t in CP.load_safetensors(torch, self.safetensors).items()}
        own = model.state_dict()
        if set(sd) != set(own):
            raise RuntimeError("parameter names differ: %s" % sorted(set(sd) ^ set(own)))
        model.load_state_dict({k: t.reshape(own[k].shape) for k, t in sd.items()})
        return model.eval()


# ------------------------------------------------------------------------------ processes
def tsf_cmd(args, m, threads, out_dir=None, reps=0):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="passive")
    cmd = [args.check_bin, "--run", m.safetensors, "--batch", str(m.shape[0])]
    if out_dir:
        cmd += ["--input-out", os.path.join(out_dir, "input.bin"),
                "--logits-out", os.path.join(out_dir, "logits_tsf.bin")]
    if reps:
        cmd += ["--time", "--reps", str(reps), "--warmup", str(args.warmup)]
    if args.pack:
        cmd += ["--pack"]
    return cmd, env


def ort_cmd(args, m, threads, run_dir, out=None, reps=0):
    env = dict(os.environ, ORT_DIR=args.ort_dir)
    cmd = [args.node, os.path.join(HERE, "ort_run.js"), "--model", m.onnx,
           "--input", os.path.join(run_dir, "input.bin"),
           "--shape", ",".join(str(n) for n in m.shape), "--threads", str(threads),
           "--ref", os.path.join(run_dir, "logits_tsf.bin"), "--opt", "all"]
    if args.ort_spin is not None:
        cmd += ["--spin", args.ort_spin]
    if out:
        cmd += ["--out", out]
    if reps:
        cmd += ["--reps", str(reps), "--warmup", str(args.warmup)]
    return cmd, env


def read_floats(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def within(j, tol):
    return j.get("max_abs_err") is not None and j["max_abs_err"] <= tol * j["ref_max_abs"] + 1e-30


def check(args, torch, m, run_dir):
    """The library against ORT (and PyTorch) on the same weights and input; None or why not."""
    os.makedirs(run_dir, exist_ok=True)
    cmd, env = tsf_cmd(args, m, 1, out_dir=run_dir)
    j, err, rc = run_cmd(cmd, env)
    if rc != 0 or j is None:
        return "the library failed: " + err
    ref = read_floats(os.path.join(run_dir, "logits_tsf.bin"))
    ref_max = max(abs(v) for v in ref)
    res = dict(bench="check", config=m.config, variant=m.full, ref_max_abs=ref_max, tol=args.tol)
    why = None
    for t in args.threads:
        cmd, env = ort_cmd(args, m, t, run_dir, out=os.path.join(run_dir, "logits_ort_%d.bin" % t))
        j, err, rc = run_cmd(cmd, env)
        if rc != 0 or j is None:
            return "ONNX Runtime failed: " + err
        res["ort_%dt_max_abs_err" % t] = j["max_abs_err"]
        if not within(j, args.tol):
            why = why or "ORT at %d thread%s differs from the library by %.3g (largest |logit| " \
                "%.3g, tolerance %.3g of it)" % (t, "" if t == 1 else "s", j["max_abs_err"],
                                                  ref_max, args.tol)
    if torch is not None and (why or args.torch_check):  # a diagnosis, or on request
        import numpy as np  # comes with torch
        x = np.fromfile(os.path.join(run_dir, "input.bin"), dtype="<f4").reshape(m.shape)
        with torch.no_grad():
            got = m.torch_model(torch)(torch.from_numpy(x.copy())).numpy().reshape(-1)
        e = float(np.abs(got - np.array(ref, dtype=np.float32)).max())
        res["torch_max_abs_err"] = e
        if e <= args.tol * ref_max:
            if why:
                why += "; compare_pytorch's model agrees with the library (%.3g): the export " \
                    "or ONNX Runtime is at fault" % e
        else:
            why = (why + "; " if why else "") + "compare_pytorch's model differs from the " \
                "library by %.3g (compare_pytorch.py --check-only tells more)" % e
    res["pass"] = why is None
    print(json.dumps(res), flush=True)
    return why


def median(v):
    return CP.median(v)


# ------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the tiny config, fewer repetitions")
    ap.add_argument("--configs", default=None, help="default small,vitb (--quick: tiny)")
    ap.add_argument("--variants", default="divided,joint,space")
    ap.add_argument("--threads", default="1,2", help="thread counts of both")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=0, help="default 3 (--quick: 2)")
    ap.add_argument("--tol", type=float, default=1e-5,
                    help="largest logit difference allowed, relative to the largest |logit|")
    ap.add_argument("--torch-check", action="store_true",
                    help="also compare compare_pytorch's model with the library (always done "
                    "when ORT does not match)")
    ap.add_argument("--pack", action="store_true",
                    help="the library packs its matrices once after loading "
                    "(tsf_model_pack_weights), as ORT does")
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--reexport", action="store_true")
    ap.add_argument("--ort-spin", choices=("0", "1"), default=None,
                    help="ORT session.intra_op.allow_spinning (default: ORT's own, 1)")
    ap.add_argument("--ort-dir", default=os.path.join(ROOT, "build", "ort"))
    ap.add_argument("--check-bin", default=os.path.join(ROOT, "build", "ort_check"))
    args = ap.parse_args()
    args.ort_dir = os.path.abspath(args.ort_dir)
    configs = (args.configs or ("tiny" if args.quick else "small,vitb")).split(",")
    variants = [short_variant(v) for v in args.variants.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    rounds = args.rounds or (2 if args.quick else 3)
    for c in configs:
        if c not in CP.CONFIGS:
            ap.error("unknown config " + c)

    # what is there
    args.node = shutil.which("node") or shutil.which("nodejs")
    if not args.node:
        say("skipped: no node (Debian: apt-get install nodejs npm; then " + INSTALL + ")")
        return 0
    versions, err, rc = run_cmd([args.node, os.path.join(HERE, "ort_run.js"), "--version"],
                                dict(os.environ, ORT_DIR=args.ort_dir))
    if rc != 0 or versions is None:
        say("skipped: node has no onnxruntime-node in %s (%s); install it: %s" % (
            args.ort_dir, err.splitlines()[0] if err else "?", INSTALL))
        return 0
    if not os.access(args.check_bin, os.X_OK):
        say("%s not found: make build/ort_check first" % args.check_bin)
        return 2
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    models_dir = os.path.join(args.ort_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    print("# compare_ort: onnxruntime-node %s, node %s, torch %s, cpu %s, tolerance %g, "
          "threads %s, rounds %d, OMP_WAIT_POLICY=passive for the library, ORT intra-op "
          "spinning %s, the library's weights %s, load average %.2f" % (
              versions["ort"], versions["node"], torch.__version__ if torch else "absent",
              cpu_isa(), args.tol, ",".join(map(str, args.threads)), rounds,
              {"0": "off", "1": "on"}.get(args.ort_spin, "ORT's default (on)"),
              "packed once at load (--pack)" if args.pack else "packed in each product",
              load_average()),
          flush=True)

    # 1. the models
    models, failed = [], 0
    for cname in configs:
        for v in variants:
            m = Model(models_dir, cname, v)
            if args.reexport or not m.ready():
                if torch is None:
                    say("%s %s: skipped: no exported model in %s and no torch to export one "
                        "(apt-get install python3-torch python3-numpy)" % (cname, v, models_dir))
                    continue
                say("%s %s: exporting %s" % (cname, v, os.path.relpath(m.onnx, ROOT)))
                try:
                    m.export(torch, args.check_bin)
                except Exception as e:  # noqa: BLE001  (any exporter failure: say it, go on)
                    say("%s %s: export failed: %s" % (cname, v, e))
                    failed += 1
                    continue
            models.append(m)
    if not models:
        say("skipped: no model to run")
        return 1 if failed else 0
    if args.export_only:
        return 1 if failed else 0

    # 2. the check
    passed = []
    for m in models:
        run_dir = os.path.join(args.ort_dir, "run", "%s_%s" % (m.config, m.variant))
        why = check(args, torch, m, run_dir)
        if why:
            print("[FAIL] %s %s: not timed: %s" % (m.config, m.full, why), flush=True)
            failed += 1
        else:
            print("[PASS] %s %s: ONNX Runtime = timesformer.h (logits within %g of the largest)"
                  % (m.config, m.full, args.tol), flush=True)
            m.run_dir = run_dir
            passed.append(m)
    if args.check_only:
        return 1 if failed else 0

    # 3. the timing
    results, group = [], 0
    for m in passed:
        reps = args.reps or m.c["quick_reps" if args.quick else "reps"]
        runs = [(impl, t) for t in args.threads for impl in ("tsf", "ort")]
        got = {r: [] for r in runs}
        for rnd in range(rounds):
            order = runs if (group + rnd) % 2 == 0 else runs[::-1]
            for impl, t in order:
                if impl == "tsf":
                    cmd, env = tsf_cmd(args, m, t, reps=reps)
                else:
                    cmd, env = ort_cmd(args, m, t, m.run_dir, reps=reps)
                j, err, rc = run_cmd(cmd, env)
                if rc != 0 or j is None:
                    say("failed (status %d): %s: %s" % (rc, " ".join(cmd), err))
                    failed += 1
                    continue
                j.update(config=m.config, variant=m.full, round=rnd, load1_end=load_average())
                print(json.dumps(j), flush=True)
                if impl == "ort" and not within(j, args.tol):
                    say("FAIL: %s %s: ORT at %d threads: logits differ by %g" % (
                        m.config, m.variant, t, j["max_abs_err"]))
                    failed += 1
                    continue
                got[(impl, t)].append(j)
        group += 1
        hashes = {j["hash_logits"] for t in args.threads for j in got[("tsf", t)]}
        if len(hashes) > 1:
            say("FAIL: %s %s: the library gives different logits at different thread counts" % (
                m.config, m.variant))
            failed += 1
        for t in args.threads:
            a, b = got[("tsf", t)], got[("ort", t)]
            if not a or not b:
                continue
            loads = [j[k] for j in a + b for k in ("load1", "load1_end")]
            res = dict(bench="compare", config=m.config, variant=m.full, threads=t,
                       B=m.shape[0], rounds=len(a),
                       tsf_ms=round(median([j["ms"] for j in a]), 4),
                       ort_ms=round(median([j["ms"] for j in b]), 4),
                       tsf_rss_mb=max(j["peak_rss_mb"] for j in a),
                       ort_rss_mb=max(j["peak_rss_mb"] for j in b),
                       ort_base_rss_mb=max(j["rss_base_mb"] for j in b),
                       load_min=min(loads), load_max=max(loads),
                       tsf_ms_rounds=[j["ms"] for j in a], ort_ms_rounds=[j["ms"] for j in b])
            res["ratio_time"] = round(res["tsf_ms"] / res["ort_ms"], 3)
            res["ratio_mem"] = round(res["tsf_rss_mb"] / res["ort_rss_mb"], 3)
            # the fastest repetition of any round: less disturbed by other work than medians
            res["tsf_ms_min"] = min(j["ms_min"] for j in a)
            res["ort_ms_min"] = min(j["ms_min"] for j in b)
            res["ratio_time_min"] = round(res["tsf_ms_min"] / res["ort_ms_min"], 3)
            print(json.dumps(res), flush=True)
            results.append(res)

    # 4. the table
    if not results:
        say("nothing timed")
        return 1 if failed else 0
    print("\n%-5s %-18s %3s %10s %10s %7s %7s | %7s %7s %7s %6s | %s" % (
        "conf", "variant", "thr", "tsf ms", "ort ms", "tsf/ort", "min", "tsf MB", "ort MB",
        "ort-nd", "mem", "load"))
    for r in results:
        print("%-5s %-18s %3d %10.2f %10.2f %7.2f %7.2f | %7.0f %7.0f %7.0f %6.2f | %.2f-%.2f" % (
            r["config"], r["variant"], r["threads"], r["tsf_ms"], r["ort_ms"], r["ratio_time"],
            r["ratio_time_min"], r["tsf_rss_mb"], r["ort_rss_mb"],
            r["ort_rss_mb"] - r["ort_base_rss_mb"], r["ratio_mem"], r["load_min"],
            r["load_max"]))
    print("ms = median per forward pass of a batch (tiny B = 2, small B = 4, vitb B = 1) over "
          "%d rounds; tsf/ort = the library's time / ONNX Runtime's at the same thread count "
          "(< 1: the library is faster); min = the same ratio of the fastest repetitions "
          "(less disturbed by other work on a busy machine); MB = peak RSS of the process "
          "(ORT's includes node and the ORT library, about %.0f MB before the model: "
          "ort-nd = ORT's without them); "
          "mem = tsf MB / ort MB; load = the 1-minute load average over the row's processes; "
          "the library's threads wait passively (OMP_WAIT_POLICY), ORT's %s" % (
              rounds, max(r["ort_base_rss_mb"] for r in results),
              "do not spin (--ort-spin 0)" if args.ort_spin == "0" else
              "spin between runs (ORT's default; --ort-spin 0: they do not)"))
    if failed:
        say("%d failure(s), see above" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
