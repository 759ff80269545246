"""The GPU check of qdsl's cuda target, run by bench/gpu/run.sh on a GPU
machine from what bench/gpu/prepare.py wrote: builds every CUDA project, runs
the tests (predict against the reference executor's outputs at fp32, tf32 and
bf16; the training step's gradients against the reference's; Fashion-MNIST
trained three epochs; compute-sanitizer memcheck and racecheck on predict and
the training step), then the benchmarks next to PyTorch in the same run, and
the latency model's error on ten architectures. Prints a table and writes
OUT/gpu_results.json (after every step, so a run cut short keeps what it did).

    python3 -u bench/gpu/gpu_checks.py --prepared bench/gpu/prepared --out OUT [--budget 400]
    python3 -u bench/gpu/gpu_checks.py --prepared ... --out ... --dry-run

Steps run in the order that matters most: the tests, then the headline
benchmark (QuadraNet36-T inference next to PyTorch eager, qdwconv, the
training step), then the rest; each step that would not fit in what is left
of --budget is skipped and listed with the seconds that were left, and every
command is killed (with its process group) when the budget runs out.
--dry-run (no GPU) builds the projects with -DQDSL_CUDA_EMULATE=ON, outside
--prepared, and runs the fp32 tests on the CPU emulation.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = {"fp32": 1e-4, "tf32": 2e-2, "bf16": 2e-2}
PRECISIONS = ("fp32", "tf32", "bf16")
BENCH_BATCH = 128
# The qdwconv shapes of the issue: (kernel name in QuadraNet36-T, N, C, H).
QDWCONV = [("stages.0.0/ln_qdwconv_scale_residual", 128, 64, 56),
           ("stages.2.0/ln_qdwconv_scale_residual", 128, 256, 14)]
# Built first: the longest builds, then what the tests need.
CORE = ["train_quadranet36_t", "quadranet36_t", "convblock36_t", "train_fashion_mnist",
        "fashion_mnist", "families", "xor"]


class Run:
    def __init__(self, args):
        self.args = args
        self.start = time.time()
        self.results = {"tests": [], "benchmarks": {}, "skipped": [], "architectures": [],
                        "failures": [], "steps": []}

    def left(self):
        return self.args.budget - (time.time() - self.start)

    def save(self):
        os.makedirs(self.args.out, exist_ok=True)
        self.results["seconds"] = time.time() - self.start
        path = os.path.join(self.args.out, "gpu_results.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.results, f, indent=1)
        os.replace(path + ".tmp", path)

    def fail(self, message):
        self.results["failures"].append(message)
        print("FAILED: " + message[-1500:], flush=True)

    def step(self, name, function, need_s=0):
        """Runs one step unless fewer than need_s seconds are left; a failure
        is recorded and the run goes on; results are saved after it."""
        if self.left() < need_s:
            self.results["skipped"].append("%s (budget: %.0f s left, %.0f s needed)" % (
                name, self.left(), need_s))
            print("[%5.0f s] skip %s" % (time.time() - self.start, name), flush=True)
            return None
        print("[%5.0f s] %s" % (time.time() - self.start, name), flush=True)
        began = time.time()
        try:
            return function()
        except Exception as error:  # a step's failure is its own
            self.fail("%s: %s: %s" % (name, type(error).__name__, error))
            return None
        finally:
            self.results["steps"].append({"step": name, "seconds": time.time() - began})
            self.save()

    def cmd(self, cmd, check=True, cap=600, env=None):
        """Runs cmd for at most `cap` seconds and what is left of the budget,
        killing its whole process group at the end of either."""
        timeout = min(cap, self.left() - 10)
        if timeout < 5:
            raise RuntimeError("no time left for: " + " ".join(cmd))
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True, env=env)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            raise RuntimeError("timed out after %.0f s: %s\n%s%s" % (
                timeout, " ".join(cmd), (out or "")[-1000:], (err or "")[-1000:]))
        result = subprocess.CompletedProcess(cmd, process.returncode, out, err)
        if check and result.returncode != 0:
            raise RuntimeError("failed (%d): %s\n%s%s" % (result.returncode, " ".join(cmd),
                                                          out[-2000:], err[-2000:]))
        return result


def zlib_library():
    """The system's zlib (its -dev package may be missing: the headers travel)."""
    for pattern in ("/usr/lib/x86_64-linux-gnu/libz.so*", "/lib/x86_64-linux-gnu/libz.so*",
                    "/usr/lib64/libz.so*", "/usr/lib/libz.so*"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def build(run, name):
    work = os.path.join(run.args.prepared, name)
    # The emulation builds elsewhere: a dry run leaves nothing in --prepared that
    # the GPU run would pick up (or that would have to travel).
    build_dir = (os.path.join(run.args.dry_run_builds, name) if run.args.dry_run
                 else os.path.join(work, "build-cuda"))
    include = os.path.join(run.args.prepared, "third_party", "include")
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INCLUDE_PATH=" + include,
             "-DQDSL_CUDA_EMULATE=" + ("ON" if run.args.dry_run else "OFF")]
    if name.startswith("train_") and zlib_library():
        flags += ["-DZLIB_INCLUDE_DIR=" + include, "-DZLIB_LIBRARY=" + zlib_library()]
    run.cmd(["cmake", "-S", work, "-B", build_dir, "-G", "Ninja"] + flags, cap=120)
    run.cmd(["cmake", "--build", build_dir, "-j", str(run.args.jobs_per_build)], cap=300)
    return os.path.join(build_dir, "train" if name.startswith("train_") else "predict")


def normwise(y, ref):
    if y.shape != ref.shape:
        raise RuntimeError("shape %s, reference %s" % (y.shape, ref.shape))
    return float(np.abs(y - ref).max()) / max(float(np.abs(ref).max()), 1e-30)


def predict_args(work, case):
    if case["weights"]:
        return ["--weights", os.path.join(work, case["weights"])]
    return ["--seed", str(case["seed"])]


def best_ms(stderr):
    found = re.search(r"best ([0-9.]+) ms", stderr)
    if not found:
        raise RuntimeError("predict printed no time:\n" + stderr[-1000:])
    return float(found.group(1))


def read_safetensors(path):
    """(tensors as NumPy arrays, metadata): PyTorch's twin's reader."""
    sys.path.insert(0, os.path.dirname(HERE))
    from pytorch_quadranet import read_metadata, read_safetensors as read_torch
    return {k: v.numpy() for k, v in read_torch(path).items()}, read_metadata(path)


def record(run, test, ok, **fields):
    run.results["tests"].append(dict(test=test, ok=bool(ok), **fields))
    print("  %-58s %s" % (test, "ok" if ok else "FAILED"), flush=True)
    if not ok:
        run.fail("%s %s" % (test, json.dumps(fields)))


def sanitizer_clean(tool, result):
    """(clean, summary, available): memcheck prints "ERROR SUMMARY: N
    errors", racecheck "RACECHECK SUMMARY: N hazards displayed (E errors, W
    warnings)"; a machine whose driver the sanitizer cannot attach to says
    so, which is not a fault of qdsl's."""
    text = result.stdout + result.stderr
    if tool == "racecheck":
        found = re.search(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, "
                          r"(\d+) warnings?\)", text)
        clean = found is not None and all(g == "0" for g in found.groups())
    else:
        found = re.search(r"ERROR SUMMARY: (\d+) errors?", text)
        clean = found is not None and found.group(1) == "0"
    available = found is not None or "not supported" not in text.lower()
    return result.returncode == 0 and clean, found.group(0) if found else text[-300:], available


def sanitize(run, program, args, what):
    sanitizer = shutil.which("compute-sanitizer") or "/usr/local/cuda/bin/compute-sanitizer"
    if run.args.dry_run or not os.path.exists(sanitizer):
        run.results["skipped"].append("compute-sanitizer on %s (%s)" % (
            what, "dry run" if run.args.dry_run else "not installed"))
        return
    for tool in ("memcheck", "racecheck"):
        result = run.cmd([sanitizer, "--tool", tool, "--error-exitcode", "9", program] +
                         [a.replace("{tool}", tool) for a in args], check=False, cap=150)
        clean, summary, available = sanitizer_clean(tool, result)
        if not available:
            run.results["skipped"].append("compute-sanitizer %s on %s: %s" % (tool, what, summary))
            continue
        record(run, "compute-sanitizer %s (%s)" % (tool, what), clean, summary=summary)


def predict_tests(run, manifest, programs):
    precisions = ["fp32"] if run.args.dry_run else list(PRECISIONS)
    for name, case in manifest["cases"].items():
        work = os.path.join(run.args.prepared, name)
        ref = np.load(os.path.join(work, "ref.npy"))
        for precision in precisions:
            out = os.path.join(work, "y_%s.npy" % precision)
            run.cmd([programs[name].result(), "--input", os.path.join(work, "x.npy"), "--output",
                     out, "--precision", precision] + predict_args(work, case), cap=120)
            y = np.load(out)
            error = normwise(y, ref)
            record(run, "predict %s %s" % (name, precision),
                   np.isfinite(y).all() and error <= TOLERANCE[precision], error=error,
                   tolerance=TOLERANCE[precision])
    work = os.path.join(run.args.prepared, "fashion_mnist")
    sanitize(run, programs["fashion_mnist"].result(),
             ["--input", os.path.join(work, "x.npy"), "--output",
              os.path.join(work, "y_{tool}.npy")] + predict_args(work, manifest["cases"]["fashion_mnist"]),
             "fashion_mnist predict")


def training_step(run, manifest, programs):
    """The Fashion-MNIST training step against the reference's gradients,
    and under compute-sanitizer."""
    name = "train_fashion_mnist"
    case = manifest["train"][name]
    work = os.path.join(run.args.prepared, name)
    step = ["--input", os.path.join(work, "x.npy"), "--labels", os.path.join(work, "labels.npy"),
            "--weights", os.path.join(work, case["weights"])]
    got_path = os.path.join(work, "g.safetensors")
    run.cmd([programs[name].result()] + step + ["--gradients", got_path], cap=120)
    got, got_meta = read_safetensors(got_path)
    want, want_meta = read_safetensors(os.path.join(work, "g_ref.safetensors"))
    if got.keys() != want.keys():
        raise RuntimeError("gradients of %s, expected %s" % (sorted(got), sorted(want)))
    worst = max(normwise(got[k], want[k]) for k in want)
    loss = abs(float(got_meta["qdsl.loss"]) - float(want_meta["qdsl.loss"])) / abs(
        float(want_meta["qdsl.loss"]))
    record(run, "train step fashion_mnist fp32 (loss and gradients)",
           max(worst, loss) <= TOLERANCE["fp32"], error=max(worst, loss),
           tolerance=TOLERANCE["fp32"])
    sanitize(run, programs[name].result(),
             step + ["--gradients", os.path.join(work, "g_{tool}.safetensors")], "training step")


def train_fashion_mnist(run, programs):
    work = os.path.join(run.args.prepared, "train_fashion_mnist")
    start = time.time()
    result = run.cmd([programs["train_fashion_mnist"].result(), "--data",
                      os.path.join(run.args.prepared, "data"), "--epochs", "3", "--batch", "128",
                      "--out", os.path.join(work, "run"), "--overwrite"], cap=200)
    top1 = re.findall(r"test top-1 ([0-9.]+)%", result.stdout + result.stderr)
    accuracy = float(top1[-1]) if top1 else 0.0
    record(run, "Fashion-MNIST, 3 epochs on the GPU: test top-1 >= 85%", accuracy >= 85.0,
           top1=accuracy, seconds=time.time() - start)


def pytorch(run, configs, cap=300):
    """Runs configurations in one PyTorch process; every line it printed
    counts, even when it is cut short."""
    try:
        result = run.cmd([sys.executable, "-u", os.path.join(HERE, "pytorch_gpu.py"), "suite",
                          json.dumps(configs)], cap=cap)
        text = result.stdout
    except RuntimeError as error:
        run.fail("PyTorch: %s" % error)
        text = str(error)
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "error" in entry:
                run.fail("PyTorch %s: %s" % (entry["config"], entry["error"]))
            else:
                found.append(entry)
    return found


def qdsl_inference(run, programs):
    """QuadraNet36-T at batch 128, weights from --seed 1: end to end (a CUDA
    graph with the copies in and out) and the kernels alone (their device
    times, from --profile-json), per precision."""
    work = os.path.join(run.args.prepared, "quadranet36_t")
    x = os.path.join(work, "x%d.npy" % BENCH_BATCH)
    if not os.path.exists(x):
        np.save(x, np.random.default_rng(0).standard_normal((BENCH_BATCH, 224, 224, 3),
                                                             dtype=np.float32))
    program = programs["quadranet36_t"].result()
    bench = run.results["benchmarks"].setdefault("qdsl_inference", {})
    for precision in PRECISIONS:
        common = [program, "--seed", "1", "--input", x, "--output",
                  os.path.join(work, "y_bench.npy"), "--precision", precision]
        ms = best_ms(run.cmd(common + ["--repeat", "20", "--warmup", "3"], cap=90).stderr)
        profile = os.path.join(work, "profile_%s.json" % precision)
        run.cmd(common + ["--repeat", "3", "--profile-json", profile], cap=90)
        kernels = {k["kernel"]: min(k["seconds"]) for k in json.load(open(profile))["kernels"]}
        device_ms = sum(kernels.values()) * 1e3
        bench[precision] = {"end_to_end_ms": ms, "kernels_ms": device_ms,
                            "images_per_s": BENCH_BATCH / device_ms * 1e3,
                            "images_per_s_end_to_end": BENCH_BATCH / ms * 1e3}
        if precision == "fp32":
            run.results["benchmarks"]["qdsl_kernels_fp32"] = kernels


def headline(run, programs):
    """Bandwidth, qdsl's inference, PyTorch eager on the same architecture,
    the qdwconv shapes and PyTorch's training step, in one PyTorch process."""
    qdsl_inference(run, programs)
    configs = [{"run": "bandwidth"}]
    configs += [{"run": "infer", "model": "quadranet36_t", "precision": p, "batch": BENCH_BATCH}
                for p in PRECISIONS]
    configs += [{"run": "qdwconv", "shape": [n, c, h]} for _, n, c, h in QDWCONV]
    configs += [{"run": "train", "model": "quadranet36_t", "precision": "bf16",
                 "batch": BENCH_BATCH}]
    bench = run.results["benchmarks"]
    for entry in pytorch(run, configs, cap=180):
        kind = entry["config"]["run"]
        if kind == "bandwidth":
            bench["bandwidth"] = entry
        elif kind == "infer":
            bench.setdefault("pytorch_inference", []).append(entry)
        elif kind == "qdwconv":
            bench.setdefault("pytorch_qdwconv", []).append(entry)
        else:
            bench["pytorch_training"] = entry
    kernels = bench.get("qdsl_kernels_fp32", {})
    peak = bench.get("bandwidth", {}).get("gb_per_s")
    bench["qdwconv"] = []
    for kernel, n, c, h in QDWCONV:
        entry = {"kernel": kernel, "shape": [n, c, h], "qdsl_forward_ms": None}
        if kernel in kernels:
            moved = 2 * n * h * h * c * 4  # x read once, y written once
            entry["qdsl_forward_ms"] = kernels[kernel] * 1e3
            if peak:
                entry["qdsl_percent_of_bandwidth"] = 100 * moved / kernels[kernel] / 1e9 / peak
        bench["qdwconv"].append(entry)


def qdsl_training(run, programs):
    result = run.cmd([programs["train_quadranet36_t"].result(), "--benchmark", "--batch",
                      str(BENCH_BATCH), "--steps", "3", "--precision", "bf16"], cap=90)
    run.results["benchmarks"]["qdsl_training"] = json.loads(result.stdout.strip().splitlines()[-1])


def latency_model(run, manifest, programs):
    batch = manifest["latency_batch"]
    for arch in manifest["architectures"]:
        work = os.path.join(run.args.prepared, arch["name"])
        x = os.path.join(work, "x.npy")
        np.save(x, np.random.default_rng(1).standard_normal((batch, 28, 28, 1),
                                                             dtype=np.float32))
        result = run.cmd([programs[arch["name"]].result(), "--seed", "1", "--input", x,
                          "--output", os.path.join(work, "y.npy"), "--repeat", "20",
                          "--warmup", "3"], cap=30)
        measured = best_ms(result.stderr)
        run.results["architectures"].append(dict(arch, measured_ms=measured,
                                                 error=arch["predicted_ms"] / measured - 1))


def more_pytorch(run, configs, cap):
    run.results["benchmarks"].setdefault("pytorch_inference", []).extend(
        pytorch(run, configs, cap=cap))


def table(run):
    lines = ["test                                                       result"]
    for t in run.results["tests"]:
        lines.append("%-58s %s%s" % (t["test"], "ok" if t["ok"] else "FAILED",
                                     "  (error %.2e, tolerance %.0e)" % (t["error"], t["tolerance"])
                                     if "error" in t else ""))
    bench = run.results["benchmarks"]
    qdsl = bench.get("qdsl_inference", {})
    if qdsl:
        lines.append("\nQuadraNet36-T inference, batch %d, 224x224, images/s (device time; qdsl "
                     "end to end with the copies in brackets)" % BENCH_BATCH)
        lines.append("%-44s %16s %16s %16s" % ("", *PRECISIONS))
        lines.append("%-44s %16s %16s %16s" % ("qdsl cuda", *[
            "%.0f (%.0f)" % (qdsl[p]["images_per_s"], qdsl[p]["images_per_s_end_to_end"])
            if p in qdsl else "-" for p in PRECISIONS]))
    rows = {}
    for peer in bench.get("pytorch_inference", []):
        rows.setdefault("PyTorch %s %s" % (peer["model"], peer["mode"]), {})[peer["precision"]] = \
            peer["images_per_s"]
    for row, values in rows.items():
        lines.append("%-44s %16s %16s %16s" % (row[:44], *[
            "%.0f" % values[p] if p in values else "-" for p in PRECISIONS]))
    for q, peer in zip(bench.get("qdwconv", []), bench.get("pytorch_qdwconv", [{}] * 2)):
        lines.append("qdwconv k7 N%d C%d %d^2: qdsl fused LN+qdwconv+scale+residual %s ms (%s of "
                     "bandwidth); PyTorch qdwconv alone %s ms forward, %s ms forward+backward" % (
                         q["shape"][0], q["shape"][1], q["shape"][2],
                         "%.3f" % q["qdsl_forward_ms"] if q.get("qdsl_forward_ms") else "-",
                         "%.0f%%" % q["qdsl_percent_of_bandwidth"]
                         if q.get("qdsl_percent_of_bandwidth") else "-",
                         "%.3f" % peer["forward_ms"] if peer else "-",
                         "%.3f" % peer["forward_backward_ms"] if peer else "-"))
    if "pytorch_training" in bench:
        t = bench["pytorch_training"]
        lines.append("PyTorch training step bf16 batch %d: %.1f ms, peak GPU memory %.0f MiB" % (
            t["batch"], t["best_ms"], t["peak_gpu_memory_mib"]))
    if "qdsl_training" in bench:
        lines.append("qdsl training step bf16 batch %d (AdamW on the host): %s" % (
            BENCH_BATCH, json.dumps(bench["qdsl_training"])))
    if "bandwidth" in bench:
        lines.append("memory bandwidth (1 GiB copy): %.0f GB/s on %s" % (
            bench["bandwidth"]["gb_per_s"], bench["bandwidth"]["device"]))
    if run.results["architectures"]:
        lines.append("\nlatency model (profiles/h100.json, uncalibrated) on %d architectures of "
                     "fmnist_space, batch %s" % (len(run.results["architectures"]),
                                                 run.results.get("latency_batch", "")))
        for a in run.results["architectures"]:
            lines.append("  %-8s %-8s predicted %8.3f ms  measured %8.3f ms  error %+.0f%%" % (
                a["name"], a["choices"], a["predicted_ms"], a["measured_ms"], 100 * a["error"]))
    for s in run.results["skipped"]:
        lines.append("skipped: " + s)
    for f in run.results["failures"]:
        lines.append("FAILED: " + f[:300])
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", default=os.path.join(HERE, "prepared"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", type=float, default=400.0,
                        help="seconds for the whole check (steps are skipped to fit)")
    parser.add_argument("--jobs-per-build", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--dry-run-builds", default="/tmp/qdsl-gpu-dry-run",
                        help="where --dry-run builds the projects (outside --prepared)")
    args = parser.parse_args()
    # CMake reads include paths against its build folder: absolute ones only.
    args.prepared, args.out = os.path.abspath(args.prepared), os.path.abspath(args.out)
    run = Run(args)
    signal.signal(signal.SIGTERM, lambda *_: (run.save(), sys.exit(143)))
    manifest = json.load(open(os.path.join(args.prepared, "manifest.json")))
    run.results["prepared_from"] = manifest.get("qdsl_commit")
    run.results["latency_batch"] = manifest["latency_batch"]
    architectures = [a["name"] for a in manifest["architectures"]]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    programs = {name: pool.submit(build, run, name) for name in CORE + architectures}
    try:
        run.step("predict tests", lambda: predict_tests(run, manifest, programs))
        run.step("training step", lambda: training_step(run, manifest, programs))
        if args.dry_run:
            run.results["skipped"].append("benchmarks, training run, latency model (dry run)")
        else:
            concurrent.futures.wait(list(programs.values()), timeout=max(1, run.left() - 60))
            run.step("headline benchmark", lambda: headline(run, programs), need_s=90)
            run.step("Fashion-MNIST training", lambda: train_fashion_mnist(run, programs),
                     need_s=120)
            run.step("qdsl training step", lambda: qdsl_training(run, programs), need_s=60)
            run.step("latency model", lambda: latency_model(run, manifest, programs), need_s=40)
            timm = [{"run": "infer", "timm": m, "precision": p, "batch": BENCH_BATCH}
                    for m in ("convnext_tiny", "swin_tiny_patch4_window7_224")
                    for p in ("bf16", "fp32", "tf32")]
            run.step("timm context", lambda: more_pytorch(run, timm, cap=run.left() - 20),
                     need_s=60)
            for precision in ("bf16", "fp32", "tf32"):
                config = [{"run": "infer", "model": "quadranet36_t", "precision": precision,
                           "batch": BENCH_BATCH, "mode": "default"}]
                run.step("torch.compile %s" % precision,
                         lambda c=config: more_pytorch(run, c, cap=run.left() - 10), need_s=120)
            run.step("torch.compile max-autotune bf16",
                     lambda: more_pytorch(run, [{"run": "infer", "model": "quadranet36_t",
                                                 "precision": "bf16", "batch": BENCH_BATCH,
                                                 "mode": "max-autotune"}],
                                          cap=run.left() - 10), need_s=300)
    finally:
        for name, future in programs.items():
            if future.done() and future.exception():
                run.fail("building %s: %s" % (name, future.exception()))
        pool.shutdown(wait=False, cancel_futures=True)
        run.save()
        text = table(run)
        print(text, flush=True)
        with open(os.path.join(args.out, "gpu_results.txt"), "w") as f:
            f.write(text + "\n")
    return 1 if run.results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
