#!/usr/bin/env python3
"""Data-parallel training under MPI (docs/DISTRIBUTED.md), end to end.

Compiles examples/fashion_mnist.qd with --train, builds it (CMake finds MPI)
and checks, with 2 local processes:
  - 2 processes x batch 32 give the losses of 1 process x batch 64 over 20
    steps (relative 1e-5) and the same weights after them (1e-5), with
    random crops and flips (each example draws its own augmentation);
  - a run stopped after 10 steps on 2 processes resumes on 1, and one
    stopped on 1 resumes on 2, and both end where the straight run ends;
  - resuming with another global batch is refused, naming it;
  - a killed process ends the job within seconds, the survivor saying where
    the run stood, and the last checkpoint still resumes;
  - a gradient all-reduce that fails to start ends the job, naming the
    process and MPI's error (QDSL_TEST_FAIL_ALLREDUCE, a test-only switch);
  - a project built without MPI refuses to run under mpirun;
  - train --benchmark on 2 processes reports the all-reduce;
  - the architecture search on 2 processes x batch 16 matches 1 process x
    batch 32 (weights, architecture parameters and losses).
Skips (exit 0, with a message) when there is no mpirun.
"""
import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "codegen"))
from check_codegen import read_safetensors, run  # noqa: E402

COMMON = ["--train-subset", "4096", "--test-subset", "256", "--threads", "1", "--seed", "5",
          "--epochs", "2", "--crop", "2", "--flip", "--log-every", "1"]


def mpirun(n):
    return ["mpirun", "--oversubscribe", "--allow-run-as-root", "-np", str(n)]


def step_losses(out):
    losses = {}
    for line in open(os.path.join(out, "metrics.jsonl")):
        m = json.loads(line)
        if m["event"] == "step":
            losses[int(m["step"])] = m["loss"]
    return losses


def weights_of(out):
    return read_safetensors(os.path.join(out, "checkpoint.safetensors"))


def compare(name, ref, got, steps, tolerance=1e-5):
    """Losses at `steps` (relative) and every tensor of the checkpoints
    (weights and AdamW moments, absolute) within `tolerance`."""
    a, b = step_losses(ref), step_losses(got)
    missing = [s for s in steps if s not in a or s not in b]
    if missing:
        raise RuntimeError("%s: no loss logged for steps %s" % (name, missing))
    loss_error = max(abs(a[s] - b[s]) / abs(a[s]) for s in steps)
    wa, wb = weights_of(ref), weights_of(got)
    if wa.keys() != wb.keys():
        raise RuntimeError("%s: the checkpoints hold different tensors" % name)
    weight_error = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    ok = loss_error <= tolerance and weight_error <= tolerance
    print("%-44s losses %.1e (relative), weights %.1e  %s"
          % (name, loss_error, weight_error, "ok" if ok else "FAILED"))
    if not ok:
        raise RuntimeError("%s: losses differ by %.3g (relative) and weights by %.3g; "
                           "tolerance %g" % (name, loss_error, weight_error, tolerance))


def expect_failure(cmd, message, timeout=120):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = result.stdout + result.stderr
    if result.returncode == 0 or message not in text:
        raise RuntimeError("expected %r to fail saying %r; got exit %d and:\n%s"
                           % (" ".join(cmd), message, result.returncode, text[-3000:]))
    return text


def check_killed_rank(train, work):
    """Kills one of two processes mid-run: the job must end within seconds,
    the survivor naming where it stood; the checkpoint must still resume."""
    out = os.path.join(work, "killed")
    run(mpirun(2) + [train] + COMMON + ["--batch", "32", "--steps", "10", "--out", out])
    checkpoint = os.path.join(out, "checkpoint.safetensors")
    before = open(checkpoint, "rb").read()
    job = subprocess.Popen(mpirun(2) + [train] + COMMON +
                           ["--batch", "32", "--resume", "--out", out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Wait until the resumed run has taken a few steps.
    deadline = time.time() + 120
    while time.time() < deadline and max(step_losses(out), default=0) < 15:
        time.sleep(0.2)
    children = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True,
                              text=True).stdout.split()
    ranks = [int(pid) for pid in children
             if os.path.basename(os.readlink("/proc/%s/exe" % pid)) == "train"]
    if len(ranks) != 2:
        job.kill()
        raise RuntimeError("expected 2 train processes under mpirun, found %s" % ranks)
    killed_at = time.time()
    os.kill(max(ranks), signal.SIGKILL)
    try:
        output, _ = job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        raise RuntimeError("the job still ran 60 s after one of its processes was killed")
    seconds = time.time() - killed_at
    said = "stopped by the launcher at step" in output
    ok = job.returncode != 0 and said and seconds < 20
    print("%-44s job ended %.1f s after a process was killed (exit %d)  %s"
          % ("killed process", seconds, job.returncode, "ok" if ok else "FAILED"))
    if not ok:
        raise RuntimeError("a killed process: exit %d after %.1f s; output:\n%s"
                           % (job.returncode, seconds, output[-3000:]))
    if open(checkpoint, "rb").read() != before:
        raise RuntimeError("the killed run changed the last checkpoint")
    run([train] + COMMON + ["--batch", "64", "--resume", "--steps", "12", "--out", out])
    print("%-44s the last checkpoint is intact and resumes" % "")


def check_failed_allreduce(train, work):
    """A gradient all-reduce that fails to start (injected on rank 1 at step
    3 through QDSL_TEST_FAIL_ALLREDUCE) ends the job, naming the process and
    MPI's error, before that step's update: no process trains on with its
    own gradients alone."""
    out = os.path.join(work, "failed-allreduce")
    start = time.time()
    text = expect_failure(mpirun(2) + ["-x", "QDSL_TEST_FAIL_ALLREDUCE=1,3", train] + COMMON +
                          ["--batch", "32", "--steps", "10", "--out", out],
                          "rank 1 of 2: step 3: the gradient all-reduce could not start: "
                          "MPI_ERR_OTHER")
    logged = max(step_losses(out), default=0) if os.path.exists(
        os.path.join(out, "metrics.jsonl")) else 0
    seconds = time.time() - start
    ok = logged == 2
    print("%-44s job ended in %.1f s naming rank 1 and MPI_ERR_OTHER, last step logged %d  %s"
          % ("failed all-reduce", seconds, logged, "ok" if ok else "FAILED"))
    if not ok:
        raise RuntimeError("after an all-reduce failed at step 3 the run logged step %d:\n%s"
                           % (logged, text[-3000:]))


def check_ranks_agree(train, work):
    """Ranks started with different flags (an MPMD launch), or reading
    different copies of the data, are refused at start, naming the flag or
    the data, instead of corrupting MPI's buffers or training on a mix."""
    out = os.path.join(work, "mpmd")
    base = ["mpirun", "--oversubscribe", "--allow-run-as-root"]
    expect_failure(base + ["-np", "1", train] + COMMON + ["--batch", "8", "--out", out, ":",
                                                          "-np", "1", train] + COMMON +
                   ["--batch", "16", "--out", out],
                   "--batch is '16' here but '8' on process 0: every process of a job needs "
                   "the same flags")
    # The same flags, --data . in two folders: one label differs.
    same, other = os.path.join(work, "data-same"), os.path.join(work, "data-other")
    debian = "/usr/share/datasets/fashion-mnist"
    for folder in (same, other):
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(debian):
            target = os.path.join(folder, name)
            if not os.path.exists(target):
                os.symlink(os.path.join(debian, name), target)
    labels = os.path.join(other, "train-labels-idx1-ubyte.gz")
    raw = bytearray(gzip.decompress(open(os.path.join(debian, "train-labels-idx1-ubyte.gz"),
                                         "rb").read()))
    raw[8] = (raw[8] + 1) % 10
    os.unlink(labels)
    open(labels, "wb").write(gzip.compress(bytes(raw)))
    flags = COMMON + ["--batch", "8", "--data", ".", "--out", out]
    expect_failure(base + ["-np", "1", "-wdir", same, train] + flags +
                   [":", "-np", "1", "-wdir", other, train] + flags,
                   "the processes' training and test data (each read its own copy of the "
                   "files: give every process the same files) differ")
    print("%-44s ranks with other flags or other data are refused" % "")


def check_search(qdsl, root, work):
    """The supernet's search on 2 processes x 16 against 1 x 32."""
    project = os.path.join(work, "space")
    run([qdsl, "compile", os.path.join(root, "test", "codegen", "tiny_search_space.qd"),
         "--search", "--device=" + os.path.join(root, "test", "tools", "Inputs",
                                                "test-profile.json"), "-o", project])
    run([qdsl, "build", project])
    search = os.path.join(project, "build", "search")
    flags = ["--train-subset", "1536", "--validation", "256", "--epochs", "2",
             "--warmup-epochs", "1", "--arch-every", "2", "--threads", "1", "--seed", "2"]
    one, two = os.path.join(work, "search1"), os.path.join(work, "search2")
    run([search] + flags + ["--batch", "32", "--out", one])
    run(mpirun(2) + [search] + flags + ["--batch", "16", "--out", two])
    a = json.load(open(os.path.join(one, "search.json")))
    b = json.load(open(os.path.join(two, "search.json")))
    alpha_error = max(abs(x - y) for la, lb in zip(a["layers"], b["layers"])
                      for x, y in zip(la["alpha"], lb["alpha"]))
    wa = read_safetensors(os.path.join(one, "supernet.safetensors"))
    wb = read_safetensors(os.path.join(two, "supernet.safetensors"))
    weight_error = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    picks = a["picks"] == b["picks"]
    ok = alpha_error <= 1e-4 and weight_error <= 1e-4 and picks
    print("%-44s alpha %.1e, weights %.1e, same picks %s  %s"
          % ("search: 2 x 16 against 1 x 32", alpha_error, weight_error, picks,
             "ok" if ok else "FAILED"))
    if not ok:
        raise RuntimeError("the search on 2 processes drifted from 1 process: alpha %.3g, "
                           "weights %.3g, picks %s vs %s"
                           % (alpha_error, weight_error, a["picks"], b["picks"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    if not shutil.which("mpirun"):
        print("distributed: SKIPPED: no mpirun (scripts/setup.sh installs Debian's OpenMPI)")
        return 0
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    project = os.path.join(work, "fm")
    run([args.qdsl, "compile", os.path.join(args.root, "examples", "fashion_mnist.qd"),
         "--train", "-o", project])
    built = run([args.qdsl, "build", project])
    if "data-parallel training with MPI" not in built.stdout + built.stderr:
        raise RuntimeError("the generated project did not find MPI:\n" + built.stdout[-3000:])
    train = os.path.join(project, "build", "train")

    def path(name):
        return os.path.join(work, name)

    # 1 x 64 against 2 x 32 over 20 steps (every process's weights checked
    # equal after each step).
    run([train] + COMMON + ["--batch", "64", "--steps", "20", "--out", path("one")])
    run(mpirun(2) + [train] + COMMON + ["--batch", "32", "--steps", "20", "--check-replicas",
                                         "--out", path("two")])
    compare("2 x 32 against 1 x 64, 20 steps", path("one"), path("two"), range(1, 21))

    # Stopped after 10 steps, resumed on the other number of processes.
    run(mpirun(2) + [train] + COMMON + ["--batch", "32", "--steps", "10", "--out", path("2to1")])
    run([train] + COMMON + ["--batch", "64", "--steps", "20", "--resume", "--out", path("2to1")])
    compare("resumed 2 -> 1 processes", path("one"), path("2to1"), range(1, 21))
    run([train] + COMMON + ["--batch", "64", "--steps", "10", "--out", path("1to2")])
    run(mpirun(2) + [train] + COMMON + ["--global-batch", "64", "--steps", "20", "--resume",
                                         "--out", path("1to2")])
    compare("resumed 1 -> 2 processes", path("one"), path("1to2"), range(1, 21))
    expect_failure(mpirun(2) + [train] + COMMON + ["--batch", "64", "--resume", "--out",
                                                   path("1to2")],
                   "was trained with a global batch of 64 examples, not 128")
    expect_failure(mpirun(2) + [train] + COMMON + ["--global-batch", "63", "--out", path("odd")],
                   "--global-batch 63 does not divide among 2 processes")
    print("%-44s another global batch is refused, naming it" % "")

    check_killed_rank(train, work)
    check_failed_allreduce(train, work)
    check_ranks_agree(train, work)

    # A project built without MPI refuses to run N unrelated copies.
    run(["cmake", "-S", project, "-B", path("nompi"), "-G", "Ninja", "-DQDSL_MPI=OFF"])
    run(["cmake", "--build", path("nompi"), "--target", "train"])
    expect_failure(mpirun(2) + [os.path.join(path("nompi"), "train")] + COMMON +
                   ["--out", path("nompi-run")], "was built without MPI")
    print("%-44s a build without MPI refuses to run under mpirun" % "")

    bench = run(mpirun(2) + [train, "--benchmark", "--batch", "32", "--steps", "3",
                             "--threads", "1"]).stdout
    figures = json.loads(bench.strip().splitlines()[-1])
    if figures.get("processes") != 2 or "allreduce_exposed_s" not in figures:
        raise RuntimeError("train --benchmark on 2 processes did not report the all-reduce:\n"
                           + bench)
    print("%-44s %.2f MB per step: %.1f ms alone, %.1f ms waited after the backward pass" % (
        "benchmark on 2 processes", figures["allreduce_mb"],
        1e3 * figures["allreduce_alone_s"], 1e3 * figures["allreduce_exposed_s"]))

    check_search(args.qdsl, args.root, work)
    print("distributed: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
