"""Everything qdsl produces, saved, so that a change meant to alter nothing
can be shown to alter nothing: run it with the qdsl before the change and
with the one after, then `diff -r` the two SNAP directories.

    /usr/bin/python3 scripts/snapshot_outputs.py --qdsl OLD/qdsl --root . --work /tmp/w-old --out /tmp/old
    /usr/bin/python3 scripts/snapshot_outputs.py --qdsl build/bin/qdsl --root . --work /tmp/w-new --out /tmp/new
    diff -r /tmp/old /tmp/new    # only the work directory named in the train log differs

(a qdsl binary carries the generators and runtime it ships, so a copy of
the old build/bin/qdsl is all the old side needs.) For every model of
examples/ and test/codegen/families.qd on x86-64-avx2: the project is
compiled and built, weights initialised (seeded, random std) and `predict`
run on a seeded input; the output's bytes are saved. Training projects
(test/codegen/families.qd under two memory policies, InputQDWConv,
Fashion-MNIST): one step's gradients (`train --gradients`), and for
Fashion-MNIST the weights after one epoch on 160 examples (10 steps).
Text: compile --emit=mlir, the kernels and their configurations on every
target (compiled function names masked: they hash the generator sources),
--train, stats, stats --train, estimate of the search space. --quick skips
the 224×224 models but QuadraNet36-T. About 15 minutes on 2 cores with a
cold kernel cache.
"""
import argparse
import hashlib
import os
import re
import subprocess

import numpy as np


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError("failed: %s\n%s%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
    return r.stdout


def models_of(path):
    out = []
    for line in open(path):
        if line.startswith("model "):
            out.append(re.split(r"[ ({]", line.split()[1])[0])
    return out


def input_shape(mlir):
    for line in open(mlir):
        if "func.func @" in line:
            s = line.index("tensor<?x") + len("tensor<?x")
            return [int(d) for d in line[s:line.index("xf32>", s)].split("x")]


def save(snap, name, data):
    with open(os.path.join(snap, name), "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qdsl", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    q = a.qdsl
    files = sorted("examples/" + f for f in os.listdir(os.path.join(a.root, "examples")) if f.endswith(".qd"))
    files.append("test/codegen/families.qd")
    # text outputs
    for f in files:
        path = os.path.join(a.root, f)
        tag = f.replace("/", "_")[:-3]
        save(a.out, tag + ".mlir", run([q, "compile", path]))
        save(a.out, tag + ".stats", run([q, "stats", path, "--batch", "2"]))
        if "space" in f:
            save(a.out, tag + ".estimate", run([q, "estimate", path, "--device",
                                                os.path.join(a.root, "profiles/host-x86-64-avx2.json")]))
            continue
        for t in ("x86-64-avx2", "opencl", "arm64-a76"):
            k = run([q, "compile", path, "--emit=kernels", "--target=" + t])
            k = re.sub(r"qk_[0-9a-f]+", "qk_", k)
            save(a.out, tag + "." + t + ".kernels", k)
        km = run([q, "compile", path, "--emit=mlir", "--target=x86-64-avx2"])
        save(a.out, tag + ".kernels.mlir", km)
        if "224" not in open(path).read():
            save(a.out, tag + ".train.mlir", run([q, "compile", path, "--train"]))
            k = run([q, "compile", path, "--train", "--emit=kernels", "--target=x86-64-avx2"])
            save(a.out, tag + ".train.kernels", re.sub(r"qk_[0-9a-f]+", "qk_", k))
            save(a.out, tag + ".trainstats", run([q, "stats", path, "--train", "--batch", "4"]))
    # predict outputs
    rng = np.random.default_rng(7)
    for f in files:
        if "space" in f:
            continue
        path = os.path.join(a.root, f)
        big = "224" in open(path).read()
        if a.quick and big and "quadranet36_t" not in f:
            continue
        for m in models_of(path):
            tag = "%s_%s" % (os.path.basename(f)[:-3], m)
            d = os.path.join(a.work, tag)
            run([q, "compile", path, "--model", m, "--target=x86-64-avx2", "-o", d])
            run([q, "build", d])
            w = os.path.join(d, "w.safetensors")
            run([q, "weights", "init", path, "--model", m, "--seed", "3", "--random-std",
                 "0.05" if big else "0.3", "-o", w])
            shape = input_shape(os.path.join(d, "model.mlir"))
            x = rng.standard_normal([1 if big else 3] + shape).astype(np.float32)
            xp = os.path.join(d, "x.npy")
            np.save(xp, x)
            y = os.path.join(d, "y.npy")
            run([os.path.join(d, "build", "predict"), "--weights", w, "--input", xp, "--output", y])
            save(a.out, tag + ".predict.npy", open(y, "rb").read())
            print("predict", tag, hashlib.sha256(open(y, "rb").read()).hexdigest()[:16], flush=True)
    # training projects
    for f, m, extra in [("test/codegen/families.qd", "Families", ["--label-smoothing", "0.1"]),
                        ("test/codegen/families.qd", "Families", ["--memory-policy", "paper"]),
                        ("test/codegen/families.qd", "InputQDWConv", []),
                        ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", [])]:
        path = os.path.join(a.root, f)
        tag = "train_%s_%s" % (m, "_".join(e.strip("-") for e in extra))
        d = os.path.join(a.work, tag)
        run([q, "compile", path, "--model", m, "--train", "--target=x86-64-avx2", "-o", d] + extra)
        run([q, "build", d])
        w = os.path.join(d, "w.safetensors")
        run([q, "weights", "init", path, "--model", m, "--seed", "3", "--random-std", "0.3", "-o", w])
        shape = input_shape(os.path.join(d, "model.mlir"))
        x = rng.standard_normal([4] + shape).astype(np.float32)
        xp, lp = os.path.join(d, "x.npy"), os.path.join(d, "l.npy")
        np.save(xp, x)
        np.save(lp, np.array([1, 0, 3, 2], np.float32))
        g = os.path.join(d, "g.safetensors")
        out = run([os.path.join(d, "build", "train"), "--gradients", g, "--input", xp, "--labels", lp,
                   "--weights", w])
        save(a.out, tag + ".grad", open(g, "rb").read())
        save(a.out, tag + ".gradout", out)
        if m == "QuadraNet_FashionMNIST":
            o = os.path.join(d, "run")
            out = run([os.path.join(d, "build", "train"), "--epochs", "1", "--batch", "16",
                       "--train-subset", "160", "--test-subset", "64", "--threads", "2", "--out", o])
            save(a.out, tag + ".trainout", re.sub(r"[0-9.]+ images/s", "", out))
            save(a.out, tag + ".weights", open(os.path.join(o, "weights.safetensors"), "rb").read())
        print("train", tag, flush=True)


main()
