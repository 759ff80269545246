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


def input_shape(mlir):
    """One example's shape, from the model's input type in a project's
    model.mlir (tensor<?x28x28x1xf32>)."""
    for line in open(mlir):
        if "func.func @" in line:
            start = line.index("tensor<?x") + len("tensor<?x")
            return [int(d) for d in line[start:line.index("xf32>", start)].split("x")]
    raise SystemExit("no model in " + mlir)


def pytorch_env():
    """tcmalloc preloaded; OpenMP threads that sleep between ops, so that
    OpenBLAS's own threads get the cores."""
    env = dict(os.environ)
    if os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def write_outputs(table, results, markdown, json_path):
    print(table)
    if markdown:
        with open(markdown, "w") as f:
            f.write(table + "\n")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
