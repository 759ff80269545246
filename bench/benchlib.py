"""What the benchmark drivers share: running a command, PyTorch's best
environment, and writing the table and the figures."""
import json
import os
import subprocess

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def run(cmd, env=None, cwd=None):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if result.returncode != 0:
        raise SystemExit("failed: %s\n%s%s" % (" ".join(cmd), result.stdout[-3000:],
                                             result.stderr[-3000:]))
    return result


def widest_cpu_target(qdsl):
    """The x86 target with the widest vectors this CPU runs: the one a user
    of this machine compiles for, and the width its peers (oneDNN, OpenBLAS)
    pick for themselves at run time. qdsl decides (the CPU features each
    target needs are codegen/Targets.cpp's): `qdsl machine` refuses a target
    this CPU lacks a feature of."""
    probe = subprocess.run([qdsl, "machine", "--threads", "1", "--target", "x86-64-avx512",
                            "--json"], capture_output=True, text=True)
    return "x86-64-avx512" if probe.returncode == 0 else "x86-64-avx2"


def target_peak(qdsl, target):
    """The FMA peak at the target's vector width, best of three `qdsl machine` runs."""
    return max(json.loads(run([qdsl, "machine", "--threads", "2", "--target", target,
                               "--json"]).stdout)["fma_peak_gflops"] for _ in range(3))


def input_shape(mlir):
    """One example's shape, from the model's input type in a project's
    model.mlir (tensor<?x28x28x1xf32>)."""
    for line in open(mlir):
        if "func.func @" in line:
            start = line.index("tensor<?x") + len("tensor<?x")
            return [int(d) for d in line[start:line.index("xf32>", start)].split("x")]
    raise SystemExit("no model in " + mlir)


# Debian's OpenBLAS built on OpenMP (libopenblas0-openmp): selected for the
# PyTorch process by putting its folder first on the library path, whatever
# the system's BLAS alternative says. OpenBLAS then runs on PyTorch's own
# OpenMP threads; the pthread flavour keeps a second pool of threads that
# fights them for the two cores.
OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
OPENBLAS_PTHREAD = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
# The settings PyTorch is measured in: OpenBLAS flavour, OpenMP wait policy,
# and how the pointwise layers run (bench/pytorch_quadranet.py POINTWISE:
# 1x1 convolutions in oneDNN, or Linear in OpenBLAS). The fastest is its
# figure. The pthread flavour with ACTIVE waiting is left out: its two pools
# of spinning threads ran QuadraNet36-T up to 2.5x slower here.
SETTINGS = tuple((flavour, policy, pointwise)
                 for pointwise in ("conv1x1", "linear")
                 for flavour, policy in (("openmp", "ACTIVE"), ("openmp", "PASSIVE"),
                                         ("pthread", "PASSIVE")))
OPENBLAS_FLAVOURS = {"openmp": OPENBLAS_OPENMP, "pthread": OPENBLAS_PTHREAD}


def pytorch_env(wait_policy=None, openblas=OPENBLAS_OPENMP):
    """PyTorch's environment: tcmalloc preloaded, the OpenBLAS flavour in
    `openblas` first on the library path, and OMP_WAIT_POLICY (None: OpenMP's
    default; `choose_wait_policy` measures which is faster)."""
    env = dict(os.environ)
    if os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    if openblas and os.path.isdir(openblas):
        env["LD_LIBRARY_PATH"] = openblas + (":" + env["LD_LIBRARY_PATH"]
                                             if env.get("LD_LIBRARY_PATH") else "")
    env.pop("OMP_WAIT_POLICY", None)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    return env


def setting_env(setting):
    """pytorch_env for one of SETTINGS, (flavour, wait policy, pointwise)."""
    flavour, wait_policy, pointwise = setting
    env = pytorch_env(wait_policy, OPENBLAS_FLAVOURS[flavour])
    env["QDSL_PEER_POINTWISE"] = pointwise
    return env


def setting_name(setting):
    return "OpenBLAS %s, %s, pointwise as %s" % setting


def choose_setting(measure, rounds=2):
    """PyTorch's fastest setting: `measure(env)` returns seconds (lower is
    better); each of SETTINGS is measured `rounds` times, alternating, and
    keeps its best. Returns (the fastest, {setting name: seconds})."""
    best = {setting: float("inf") for setting in SETTINGS}
    for _ in range(rounds):
        for setting in SETTINGS:
            best[setting] = min(best[setting], measure(setting_env(setting)))
    fastest = min(best, key=best.get)
    return fastest, {setting_name(k): v for k, v in best.items()}


def write_outputs(table, results, markdown, json_path):
    print(table)
    if markdown:
        with open(markdown, "w") as f:
            f.write(table + "\n")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
