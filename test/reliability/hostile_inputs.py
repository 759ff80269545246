"""Hostile inputs: every one gets a clear error that names the file, flag or
tensor (or works correctly), never a signal, never exit 0 with a wrong
result, never a destroyed run.

    hostile_inputs.py --qdsl build/bin/qdsl --root REPO --work DIR

The inputs are made here (no binary is committed); a small Fashion-MNIST
training project is compiled and built for the cases of `train` and
`predict`. Each case states the exit status it expects and a piece of the
message; a signal, an abort, "LLVM ERROR" or an exit status other than the
expected one fails it. docs/RELIABILITY.md lists the classes.
"""
import argparse
import gzip
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys

import numpy as np

FAILURES = []


def sh(cmd, expect_status, expect_text, cwd=None):
    """Runs cmd; checks its exit status and its output: expect_text is a
    string it must hold, a tuple of which it must hold one, or a list of
    which it must hold all."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                            timeout=600)
    output = result.stdout + result.stderr
    problems = []
    if result.returncode < 0:
        problems.append("killed by signal %d" % -result.returncode)
    if "LLVM ERROR" in output or "terminate called" in output or "Assertion" in output:
        problems.append("crashed")
    if result.returncode != expect_status:
        problems.append("exit status %d, expected %d" % (result.returncode, expect_status))
    if isinstance(expect_text, list):
        missing = [t for t in expect_text if t not in output]
    elif isinstance(expect_text, tuple):
        missing = [] if any(t in output for t in expect_text) else [expect_text]
    else:
        missing = [] if expect_text in output else [expect_text]
    if missing:
        problems.append("output lacks %r" % (missing,))
    return problems, output


def case(name, cmd, expect_status, expect_text, cwd=None, check=None):
    problems, output = sh(cmd, expect_status, expect_text, cwd)
    if check and not problems:
        problems += check()
    if problems:
        FAILURES.append(name)
        print("FAIL %-44s %s\n     %s\n     %s" % (name, "; ".join(problems), " ".join(map(str, cmd)),
                                                  output.strip().replace("\n", "\n     ")[-1500:]))
    else:
        first = next((l for l in output.splitlines() if l.strip()), "")
        print("ok   %-44s %s" % (name, first[:110]))


# --- writers of well-formed and malformed files ---------------------------

def safetensors(path, entries, data, header_text=None, pad=True):
    """entries: name -> (shape, [begin, end]); data: bytes."""
    if header_text is None:
        header_text = json.dumps({k: {"dtype": "F32", "shape": s, "data_offsets": o}
                                  for k, (s, o) in entries.items()})
    h = header_text.encode()
    while pad and len(h) % 8:
        h += b" "
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                                "<f4").reshape(v["shape"]).copy() for k, v in header.items()}
    return tensors, meta


def write_tensors(path, tensors, meta):
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for k in sorted(tensors):
        b = tensors[k].astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape),
                     "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    safetensors(path, None, b"".join(blobs), header_text=json.dumps(header))


def npy_header(dict_text):
    h = dict_text
    while (10 + len(h) + 1) % 64:
        h += " "
    h += "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode()


def idx(path, array, compress=False):
    array = np.asarray(array, np.uint8)
    data = struct.pack(">HBB", 0, 8, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape) + array.tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def unchanged(path, before):
    return lambda: [] if os.path.exists(path) and digest(path) == before else [
        "%s was changed or removed" % path]


# --- the cases -------------------------------------------------------------

def qdsl_cases(q, root, w):
    ex = os.path.join(root, "examples")
    fm, xor = os.path.join(ex, "fashion_mnist.qd"), os.path.join(ex, "xor_neuron.qd")
    profile = json.load(open(os.path.join(root, "test/tools/Inputs/test-profile.json")))
    calibrated = json.load(open(os.path.join(root, "test/tools/Inputs/calibrated-profile.json")))

    # Outputs never destroy inputs, and special files are written through,
    # never renamed over.
    own = os.path.join(w, "own.qd")
    shutil.copy(fm, own)
    before = digest(own)
    test_profile = os.path.join(root, "test/tools/Inputs/test-profile.json")
    for name, cmd in (("weights init -o the model", [q, "weights", "init", own, "-o", own]),
                      ("compile --emit=mlir -o the model",
                       [q, "compile", own, "--emit=mlir", "-o", own]),
                      ("stats --json -o the model", [q, "stats", own, "--json", "-o", own]),
                      ("estimate -o the model",
                       [q, "estimate", own, "--device", test_profile, "-o", own])):
        case(name, cmd, 1, "is the input '%s' of this command" % own,
             check=unchanged(own, before))
    profile_copy = os.path.join(w, "own-profile.json")
    shutil.copy(test_profile, profile_copy)
    case("compile --emit=cost-model -o the profile",
         [q, "compile", os.path.join(ex, "search_space.qd"), "--emit=cost-model", "--device",
          profile_copy, "-o", profile_copy], 1, "is the input",
         check=unchanged(profile_copy, digest(profile_copy)))
    devnull = os.stat("/dev/null")
    case("stats -o /dev/null", [q, "stats", own, "--json", "-o", "/dev/null"], 0, "",
         check=lambda: [] if stat.S_ISCHR(os.stat("/dev/null").st_mode) and
         os.stat("/dev/null").st_rdev == devnull.st_rdev else ["/dev/null was replaced"])
    if os.path.exists("/dev/full"):
        case("stats -o /dev/full", [q, "stats", own, "--json", "-o", "/dev/full"], 1,
             "cannot write '/dev/full': No space left on device",
             check=lambda: [] if stat.S_ISCHR(os.stat("/dev/full").st_mode) else
             ["/dev/full was replaced"])
    fifo = os.path.join(w, "fifo")
    os.mkfifo(fifo)
    case("stats -o a FIFO nothing reads", [q, "stats", own, "--json", "-o", fifo], 1,
         "(a FIFO that nothing reads)",
         check=lambda: [] if stat.S_ISFIFO(os.stat(fifo).st_mode) else ["the FIFO was replaced"])
    target, link = os.path.join(w, "target.json"), os.path.join(w, "link.json")
    open(target, "w").write("{}")
    os.symlink("target.json", link)
    case("stats -o a link", [q, "stats", own, "--json", "-o", link], 0, "",
         check=lambda: [] if os.path.islink(link) and '"params"' in open(target).read()
         else ["the link was replaced, or its file not written"])

    # Endless and special files as inputs: refused at the reader's limit,
    # never read until memory runs out; a FIFO that nothing writes never
    # blocks.
    case("/dev/zero as --device", [q, "estimate", fm, "--device", "/dev/zero"], 1,
         "device profile '/dev/zero' gives more than 256 MiB (a pipe or device")
    case("/dev/zero as --calibrate", [q, "profile", fm, "--calibrate", "/dev/zero", "-o",
                                      w + "/p.json"], 1, "'/dev/zero' gives more than 256 MiB")
    image = os.path.join(w, "image.npy")
    np.save(image, np.zeros((1, 28, 28, 1), np.float32))
    case("/dev/zero as --weights", [q, "run", fm, "--weights", "/dev/zero", "--input", image,
                                    "-o", w + "/y.npy"], 1, "'/dev/zero' gives more than 1 GiB")
    silent = os.path.join(w, "silent-fifo")
    os.mkfifo(silent)
    case("a FIFO nothing writes as --device", [q, "estimate", fm, "--device", silent], 1,
         "'%s': not valid JSON" % silent)
    case("a FIFO nothing writes as the model file", [q, "stats", silent], 1,
         "'%s' defines no model or space to compile" % silent)

    # A device name is a file name in the profile folders, never a path.
    escape = os.path.join(w, "escape.qd")
    open(escape, "w").write('import "std/blocks.qd"\nspace S {\n  input f32[28, 28, 1]\n'
                            '  stem patchify(out = 8, k = 4)\n  stage choice(quadra(k = 3, '
                            'expand = 2), identity)\n  head classifier(10)\n'
                            '  constraint latency("../../etc/x") <= 1 ms\n}\n')
    case("constraint naming a path", [q, "estimate", escape, "--device",
                                      os.path.join(root, "test/tools/Inputs/test-profile.json")],
         1, "device name '../../etc/x': expected letters, digits")
    case("--calibrate naming a path", [q, "profile", escape, "--calibrate", "../x/host-fmnist",
                                       "-o", w + "/p.json"], 1,
         "'../x/host-fmnist' is not a device name")

    # Crash class: limits checked before work.
    deep = os.path.join(w, "deep.json")
    open(deep, "w").write('{"format": "qdsl-device-profile", "x": ' + "[" * 100000 +
                          "]" * 100000 + "}")
    case("profile nested 100000 deep", [q, "estimate", fm, "--device", deep], 1,
         "'%s': nests deeper than 32 levels" % deep)
    wide = os.path.join(w, "wide.qd")
    open(wide, "w").write("model Wide {\n  input f32[4, 4, 3]\n  layer linear(out = 16777216)\n"
                          "  head linear(16777216)\n}\n")
    case("16M channels: weights init", [q, "weights", "init", wide, "-o", w + "/wide.st"], 1,
         "qdsl weights init would need about")
    x443 = os.path.join(w, "x443.npy")
    np.save(x443, np.zeros((1, 4, 4, 3), np.float32))
    case("16M channels: run", [q, "run", wide, "--input", x443, "-o", w + "/y.npy"], 1,
         "qdsl run would need about")
    case("16M channels: compile --target", [q, "compile", wide, "--target=x86-64-avx2", "-o",
                                           w + "/wide-project"], 1,
         "the generated program would need about")
    case("--memory-limit below the model", [q, "weights", "init", fm, "-o", w + "/w.st",
                                            "--memory-limit", "1K"], 1,
         ("more than the memory limit of 1.0 KiB (--memory-limit)",))
    huge = os.path.join(w, "huge.qd")
    open(huge, "w").write("model Huge {\n  input f32[16777216, 16777216, 16777216]\n"
                          "  head linear(3)\n}\n")
    case("input f32[2^24, 2^24, 2^24]", [q, "compile", huge, "--target=x86-64-avx2", "-o",
                                         w + "/huge-project"], 1,
         "count exceeds 64 bits")
    nest = os.path.join(w, "nest.st")
    safetensors(nest, None, b"", header_text='{"w": ' + "[" * 20000 + "]" * 20000 + "}")
    case("safetensors header nested 20000 deep", [q, "run", xor, "--weights", nest, "--input",
                                                  x443, "-o", w + "/y.npy"], 1,
         "'%s': the header nests deeper than 4 levels" % nest)

    # Silently wrong: strict safetensors.
    good_w = os.path.join(w, "xor.st")
    sh([q, "weights", "init", xor, "-o", good_w], 0, "")
    x2 = os.path.join(w, "x2.npy")
    np.save(x2, np.zeros((3, 2), np.float32))
    one = struct.pack("<f", 1.0)
    for name, header, data, message in [
            ("duplicate tensor names",
             '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
             '"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', one * 2,
             "the header names 'a' twice"),
            ("overlapping data_offsets",
             '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
             '"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', one * 2,
             "overlap the tensor before it"),
            ("misaligned data_offsets",
             '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}', one * 2,
             "not a multiple of 4"),
            ("trailing bytes", '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
             one * 2, "4 bytes after the last tensor's data belong to no tensor"),
            ("a gap between tensors",
             '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
             '"b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}', one * 3,
             "bytes 4 to 8 of the data belong to no tensor"),
            ("a dimension of 2^64-1",
             '{"a": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 4]}}',
             one, "has a dimension of 18446744073709551615")]:
        path = os.path.join(w, name.replace(" ", "_") + ".st")
        safetensors(path, None, data, header_text=header)
        case("safetensors: " + name, [q, "run", xor, "--weights", path, "--input", x2, "-o",
                                       w + "/y.npy"], 1, ["'%s'" % path, message])
    nan_w = os.path.join(w, "nan-weights.st")
    tensors, meta = read_safetensors(good_w)
    first = sorted(tensors)[0]
    tensors[first].flat[0] = np.nan
    write_tensors(nan_w, tensors, meta)
    case("a NaN weight", [q, "run", xor, "--weights", nan_w, "--input", x2, "-o", w + "/y.npy"],
         1, "tensor '%s' holds nan at element 0" % first)
    other_w = os.path.join(w, "other-model.st")
    tensors, meta = read_safetensors(good_w)
    write_tensors(other_w, tensors, dict(meta, **{"qdsl.model": "SomethingElse"}))
    case("weights of another model", [q, "run", xor, "--weights", other_w, "--input", x2, "-o",
                                      w + "/y.npy"], 1,
         "'%s' holds the weights of model SomethingElse, not XorNeuron" % other_w)
    nan_x = os.path.join(w, "nan-x.npy")
    np.save(nan_x, np.array([[0, 1], [np.nan, 0]], np.float32))
    case("a NaN input", [q, "run", xor, "--input", nan_x, "-o", w + "/y.npy"], 1,
         "'%s' holds nan at element 2; inputs must be finite" % nan_x)

    # Silently wrong: device profiles validated.
    def with_profile(name, change, message, model=fm, base=profile):
        p = json.loads(json.dumps(base))
        change(p)
        path = os.path.join(w, name.replace(" ", "_") + ".json")
        json.dump(p, open(path, "w"))
        case("profile: " + name, [q, "estimate", model, "--device", path], 1,
             ["'%s'" % path, message])
    with_profile("negative linear coefficient", lambda p: p["families"][
        "pwconv_scale_residual"].update(coefficients=[2e-6, -1e-11, 0]),
        "coefficients are from 0 to 10")
    with_profile("huge loglinear coefficient", lambda p: p["families"].update(
        ln_pwconv_gelu={"form": "loglinear", "features": ["macs"], "coefficients": [1, 1e300]}),
        "coefficients are from -1000 to 1000")
    with_profile("a feature that is no name", lambda p: p["families"].update(
        ln_pwconv_gelu={"form": "loglinear", "features": ["Bogus!"], "coefficients": [1, 1]}),
        "'Bogus!' is not a feature")
    with_profile("a feature no kernel has", lambda p: p["families"].update(
        ln_pwconv_gelu={"form": "loglinear", "features": ["widgets"], "coefficients": [-20, 1]}),
        "family 'ln_pwconv_gelu' uses the feature 'widgets'")
    with_profile("2.5 cores", lambda p: p["device"].update(cores=2.5),
                 "device.cores: expected a whole number")
    with_profile("negative overhead", lambda p: p["overhead"].update(per_pass_us=-6),
                 "overhead.per_pass_us: expected a number >= 0, got -6")
    with_profile("per-kernel overhead 1e9 us", lambda p: p["overhead"].update(per_kernel_us=1e9),
                 "overhead.per_kernel_us: expected a number <= 1e+06, got 1e+09")
    # The machine and calibration records of version 2.
    for name, change, message in [
            ("machine as an array", lambda p: p.update(machine=[]), "machine: expected an object"),
            ("machine threads -3", lambda p: p["machine"].update(threads=-3),
             "machine.threads: expected a number >= 1, got -3"),
            ("machine peak as text", lambda p: p["machine"].update(fma_peak_gflops="fast"),
             "machine.fma_peak_gflops: expected a number"),
            ("round spread 1e9", lambda p: p["machine"].update(round_spread=1e9),
             "machine.round_spread: expected a number <= 100, got 1e+09"),
            ("calibration batch 0", lambda p: p["calibration"]["overall"].update(by_batch={"0": 2}),
             "calibration.overall.by_batch.0: expected a batch size from 1 to 1048576"),
            ("calibration factor -2", lambda p: p["calibration"]["factors"]["pool_ln_linear"]
             .update(by_batch={"1": -2}),
             "calibration.factors.pool_ln_linear.by_batch.1: expected a factor from 0.001 to 1000"),
            ("calibration factors as a list", lambda p: p["calibration"].update(factors=[1, 2]),
             "calibration.factors: expected an object"),
            ("calibration without overall", lambda p: p["calibration"].pop("overall"),
             "calibration.overall: missing (expected an object)")]:
        with_profile(name, change, message, base=calibrated)
    truncated = os.path.join(w, "truncated-profile.json")
    with open(os.path.join(root, "profiles/host-x86-64-avx2.json")) as f:
        open(truncated, "w").write(f.read(3000))
    case("--calibrate a truncated profile", [q, "profile", fm, "--calibrate", truncated, "-o",
                                             w + "/c.json"], 1,
         ["--calibrate: '%s': not valid JSON" % truncated])
    case("--calibrate a directory", [q, "profile", fm, "--calibrate", w, "-o", w + "/c.json"], 1,
         "--calibrate: device profile '%s' is a directory; expected a file" % w)
    case("machine --threads -1", [q, "machine", "--threads", "-1"], 1, "--threads")

    # Flags: an empty or absurd value is an error naming the flag.
    case("--target= (empty)", [q, "compile", fm, "--target="], 1, "--target needs a value")
    case("--label-smoothing= (empty)", [q, "compile", fm, "--train", "--label-smoothing="], 1,
         "--label-smoothing needs a value")
    case("--random-std inf", [q, "weights", "init", xor, "-o", w + "/w.st", "--random-std",
                              "inf"], 1, "--random-std takes a number above 0")
    case("--repeat 99999 (profile)", [q, "profile", fm, "--repeat", "99999", "-o", w + "/p.json"],
         1, "--repeat must be at most 10000")
    case("profile -o in a missing directory", [q, "profile", fm, "-o", w + "/no/such/p.json"], 1,
         "does not exist")
    case("--memory-limit 10Q", [q, "weights", "init", xor, "-o", w + "/w.st", "--memory-limit",
                                "10Q"], 1, "--memory-limit expects a positive size")
    case("--labels without --train", [q, "run", xor, "--input", x2, "--labels", x2, "-o",
                                      w + "/y.npy"], 1, "--labels goes with qdsl run --train")
    bigf = os.path.join(w, "bigfloat.qd")
    open(bigf, "w").write("model M {\n  input f32[4, 4, 3]\n  layer layerscale(init = 1e300)\n"
                          "  head linear(3)\n}\n")
    case("layerscale(init = 1e300)", [q, "compile", bigf], 1, "must be a finite number of at most 1e30")
    case("-D C=0 is reported against the flag", [q, "compile", fm, "-D", "C=0"], 1,
         "fashion_mnist.qd:6:44: error: -D C=0: conv2d: 'out' must be between 1 and")

    # Data loss: a directory qdsl did not write is not overwritten.
    mine = os.path.join(w, "mine")
    os.makedirs(mine, exist_ok=True)
    open(os.path.join(mine, "CMakeLists.txt"), "w").write("# mine\n")
    before = digest(os.path.join(mine, "CMakeLists.txt"))
    case("compile -o into someone's directory", [q, "compile", fm, "--target=x86-64-avx2", "-o",
                                                 mine], 1, "holds files that are not a project",
         check=unchanged(os.path.join(mine, "CMakeLists.txt"), before))
    case("compile -o an existing file", [q, "compile", fm, "--target=x86-64-avx2", "-o",
                                         os.path.join(mine, "CMakeLists.txt")], 1,
         "is a file; a project needs a directory")

    # An arm64-a76 project's options for its cross-compiled programs
    # (codegen/project/qdsl_cross.cmake), refused at configure time.
    arm = os.path.join(w, "arm")
    shutil.rmtree(arm, ignore_errors=True)
    case("compile for arm64-a76", [q, "compile", fm, "--target=arm64-a76", "-o", arm], 0, "wrote")
    case("arm project: QDSL_CROSS_PROGRAMS=maybe",
         ["cmake", "-S", arm, "-B", os.path.join(arm, "b1"), "-DQDSL_CROSS_PROGRAMS=maybe"], 1,
         "QDSL_CROSS_PROGRAMS is 'maybe'; expected AUTO, ON or OFF")
    case("arm project: ON without its cross compiler",
         ["cmake", "-S", arm, "-B", os.path.join(arm, "b2"), "-DQDSL_CROSS_PROGRAMS=ON",
          "-DQDSL_CROSS_PREFIX=no-such-arch-"], 1,
         "QDSL_CROSS_PROGRAMS=ON but no cross compiler no-such-arch-g++")

    # qdsl search deriving from an earlier search (--from-search): its files
    # are checked before anything is built or trained.
    space = os.path.join(root, "test/codegen/tiny_search_space.qd")
    test_profile = os.path.join(root, "test/tools/Inputs/test-profile.json")
    earlier = os.path.join(w, "earlier-search")
    os.makedirs(os.path.join(earlier, "search"), exist_ok=True)
    layers = json.loads(subprocess.run([q, "estimate", space, "--device", test_profile, "--json"],
                                       capture_output=True, text=True, check=True).stdout)["layers"]
    def earlier_search(report_text, probabilities):
        open(os.path.join(earlier, "report.json"), "w").write(report_text)
        json.dump({"layers": [{"layer": l["layer"], "candidates": [c["candidate"] for c in l["candidates"]],
                               "probabilities": probabilities(len(l["candidates"]))}
                              for l in layers]},
                  open(os.path.join(earlier, "search", "search.json"), "w"))
    search = [q, "search", space, "--device", test_profile, "--latency-limit", "1s",
              "--from-search", earlier, "-o", w + "/searched"]
    # A folder with a user's own run is not qdsl search's to write over.
    users = os.path.join(w, "users-folder")
    os.makedirs(os.path.join(users, "train"), exist_ok=True)
    own_run = os.path.join(users, "train", "checkpoint.safetensors")
    open(own_run, "wb").write(b"the user's checkpoint")
    case("search -o a folder of the user's", [q, "search", space, "--device", test_profile,
                                              "-o", users, "--overwrite"], 1,
         "holds files that qdsl search did not write (no .qdsl-search)",
         check=unchanged(own_run, digest(own_run)))
    # The launcher is checked before the supernet is compiled.
    case("search --launcher of blanks", [q, "search", space, "--device", test_profile,
                                         "--launcher=  ", "-o", w + "/launcher"], 1,
         "--launcher is empty")
    case("search --launcher naming no program",
         [q, "search", space, "--device", test_profile, "--launcher=no-such-mpirun -np 2",
          "-o", w + "/launcher"], 1, "cannot find 'no-such-mpirun' on PATH")
    earlier_search('{"seed": 0, "settings": {"search_ep', lambda n: [1 / n] * n)
    case("search --from-search: a truncated report.json", search, 1,
         "--from-search '%s': '%s/report.json'" % (earlier, earlier))
    earlier_search('{"seed": 0, "settings": {"search_epochs": 3}}', lambda n: ["0.5"] * n)
    case("search --from-search: probabilities as strings", search, 1,
         "are not a distribution (numbers in [0, 1] summing to 1)")
    earlier_search('{"seed": 0, "settings": {"search_epochs": 3}}', lambda n: [0.9] * n)
    case("search --from-search: probabilities summing to more than 1", search, 1,
         "are not a distribution (numbers in [0, 1] summing to 1)")
    earlier_search('{"seed": "0", "settings": {"search_epochs": 3}}', lambda n: [1 / n] * n)
    case("search --from-search: a seed as a string", search, 1,
         "its report.json has no integer seed and settings.search_epochs")
    earlier_search('{"seed": -5, "settings": {"search_epochs": 3}}', lambda n: [1 / n] * n)
    case("search --from-search: a negative seed", search, 1,
         "its report.json records seed -5 and search_epochs 3; a search has a seed >= 0")
    earlier_search('{"seed": 0, "settings": {"search_epochs": -2}}', lambda n: [1 / n] * n)
    case("search --from-search: negative epochs", search, 1, "and search_epochs -2; a search")
    # Another space's search with as many candidates per layer, renamed.
    earlier_search('{"seed": 0, "settings": {"search_epochs": 3}}', lambda n: [1 / n] * n)
    renamed = json.load(open(os.path.join(earlier, "search", "search.json")))
    renamed["layers"][0]["candidates"] = ["banana%d" % i
                                          for i in range(len(renamed["layers"][0]["candidates"]))]
    json.dump(renamed, open(os.path.join(earlier, "search", "search.json"), "w"))
    case("search --from-search: other candidates", search, 1,
         "is not a search of 'TinySearch': its layers or candidates differ from the space's")
    earlier_search('{"seed": 0, "settings": {"search_epochs": 3}}', lambda n: [1 / n] * n)
    open(os.path.join(earlier, "search", "search.json"), "w").write(
        '{"layers": ' + "[" * 100000 + "]" * 100000 + "}")
    case("search --from-search: search.json nested 100000 deep", search, 1,
         "search.json' nests deeper than 32 levels: not a file qdsl search wrote")

    # A PyTorch file holding an infinity: refused at the import, naming it.
    init_w, torch_w = os.path.join(w, "xor-init.st"), os.path.join(w, "xor-torch.st")
    subprocess.run([q, "weights", "init", xor, "-o", init_w], check=True, capture_output=True)
    subprocess.run([q, "weights", "export", xor, init_w, "-o", torch_w], check=True,
                   capture_output=True)
    tensors, meta = read_safetensors(torch_w)
    first = sorted(tensors)[0]
    tensors[first].reshape(-1)[0] = np.inf
    write_tensors(torch_w, tensors, meta)
    case("weights import of a PyTorch file holding inf",
         [q, "weights", "import", xor, torch_w, "-o", w + "/imported.st"], 1,
         "'%s': weight" % torch_w, check=lambda: [] if not os.path.exists(w + "/imported.st")
         else ["the weights were written"])

    # Unclear, now clear.
    case("a directory as the weights file", [q, "run", xor, "--weights", w, "--input", x2, "-o",
                                             w + "/y.npy"], 1, "'%s' is a directory" % w)


def disk_full_cases(q, root, w):
    """On a full disk (a small tmpfs): an output's earlier file is left
    intact, and a project write that failed half-way can be written over
    once there is room. Skipped, saying so, where tmpfs cannot be mounted
    (not root, or a container without the capability)."""
    fm = os.path.join(root, "examples", "fashion_mnist.qd")
    disk = os.path.join(w, "small-disk")
    os.makedirs(disk, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", disk],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print("SKIP disk-full cases: cannot mount a tmpfs here (%s)"
              % (mounted.stderr.strip() or "mount failed"))
        return
    try:
        out = os.path.join(disk, "stats.json")
        subprocess.run([q, "stats", fm, "--json", "-o", out], check=True, capture_output=True)
        before = digest(out)
        filler = os.path.join(disk, "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=4k"], capture_output=True)
        case("compile --emit=mlir -o an existing file, disk full",
             [q, "compile", fm, "--emit=mlir", "-o", out], 1,
             ["cannot write '%s'" % out, "(the earlier file, if any, is unchanged)"],
             check=unchanged(out, before))
        os.unlink(filler)
        project = os.path.join(disk, "project")
        case("compile -o DIR, the disk full half-way",
             [q, "compile", fm, "--target=x86-64-avx2", "-o", project], 1, "cannot write")
        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
        case("compile -o DIR again, with room",
             [q, "compile", fm, "--target=x86-64-avx2", "-o", project], 0, "wrote")
    finally:
        subprocess.run(["umount", disk], capture_output=True)


def image_folder(root, bad=None):
    """A folder data set made here (docs/INTEROP.md's layout): train/ and
    val/, two classes of small JPEG and PNG images of several sizes and
    kinds (CMYK JPEG, palette and 16-bit PNG, which are read); `bad` =
    (relative path, bytes) adds one hostile file."""
    from PIL import Image
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for label, name in enumerate(("ants", "bees")):
            folder = os.path.join(root, split, name)
            os.makedirs(folder)
            for i in range(8):
                size = (24 + 5 * i, 30 + 3 * i)
                pixels = rng.integers(0, 60, size + (3,), dtype=np.uint8) + 150 * label
                image = Image.fromarray(pixels.astype(np.uint8))
                kind = i % 4
                if kind == 0:
                    image.save(os.path.join(folder, "%d.jpg" % i), quality=90)
                elif kind == 1:
                    image.convert("CMYK").save(os.path.join(folder, "%d.jpeg" % i))
                elif kind == 2:
                    image.convert("P").save(os.path.join(folder, "%d.png" % i))
                else:
                    grey = (pixels[:, :, 0].astype(np.uint16) * 257)
                    Image.fromarray(grey, "I;16").save(os.path.join(folder, "%d.png" % i))
    if bad:
        path = os.path.join(root, bad[0])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if bad[1] is None:
            os.makedirs(path)
        else:
            with open(path, "wb") as f:
                f.write(bad[1])
    return root


def image_folder_cases(train, w):
    """train --dataset folder on hostile images: each an error naming the
    file (exit 1), never a crash."""
    from PIL import Image
    good = image_folder(os.path.join(w, "images-good"))
    jpeg = open(os.path.join(good, "train", "ants", "0.jpg"), "rb").read()
    import io
    zero = io.BytesIO()
    Image.new("RGB", (1, 1)).save(zero, "PNG")
    zero = bytearray(zero.getvalue())
    zero[16:24] = bytes(8)  # IHDR: width 0, height 0
    flags = ["--dataset", "folder", "--epochs", "1", "--batch", "4"]
    case("train --dataset folder: a good folder", [train] + flags + ["--data", good, "--out",
         w + "/img-ok", "--overwrite"], 0, ["train: training split: 16 images in 2 classes: ants, bees",
                             "train: wrote"])
    for name, bad, status, text in [
            ("a truncated JPEG", ("train/ants/cut.jpg", jpeg[:len(jpeg) // 2]), 1,
             ("cut.jpg: the JPEG data is damaged or incomplete",
              "cut.jpg: not a JPEG image the decoder reads")),
            ("a text file named .jpg", ("train/bees/text.jpg", b"just some words\n"), 1,
             "text.jpg: neither a JPEG nor a PNG file"),
            ("a 0x0 PNG", ("val/ants/zero.png", bytes(zero)), 1,
             "zero.png: the image is 0 × 0 pixels"),
            ("a broken link named .jpg", ("train/ants/gone.jpg", "link"), 1,
             "gone.jpg: not a regular file"),
            ("a file not named as an image", ("train/ants/notes.txt", b"x"), 0,
             "skipped 1 files not named .jpg, .jpeg or .png"),
            ("a class folder with no images", ("train/wasps/readme.txt", b"none"), 1,
             "class folder 'wasps' holds no .jpg, .jpeg or .png file"),
            # Links back into the data set: a loop, and another class's images.
            ("a link loop (up -> ..)", ("train/ants/up", ".."), 1,
             "up: leads back to a folder the scan reads already"),
            ("a link to another class", ("train/ants/more", "../bees"), 1,
             "more: leads back to a folder the scan reads already"),
            ("classes the test split lacks", ("val/ants", "gone"), 1,
             "'ants' is only in the training folder")]:
        links = {"link": os.path.join("..", "nowhere"), "..": "..", "../bees": "../bees"}
        root = image_folder(os.path.join(w, "images-bad"),
                            None if bad[1] in links or bad[1] == "gone" else bad)
        if bad[1] in links:
            os.symlink(links[bad[1]] if bad[1] != "link" else os.path.join(root, "nowhere"),
                       os.path.join(root, bad[0]))
        if bad[1] == "gone":
            shutil.rmtree(os.path.join(root, bad[0]))
        case("train --dataset folder: " + name,
             [train] + flags + ["--data", root, "--out", w + "/img-bad", "--overwrite"],
             status, text)
    # An input kept in --out under an output's name is never written over.
    kept = os.path.join(w, "img-kept")
    os.makedirs(kept, exist_ok=True)
    np.save(os.path.join(kept, "x.npy"), np.zeros((8, 28, 28, 1), np.uint8))
    shutil.copy(os.path.join(kept, "x.npy"), os.path.join(kept, "weights.safetensors"))
    np.save(os.path.join(kept, "y.npy"), np.arange(8) % 2)
    before = digest(os.path.join(kept, "weights.safetensors"))
    case("train --out holding an input under an output's name",
         [train, "--dataset", "npy", "--train-images", os.path.join(kept, "weights.safetensors"),
          "--train-labels", os.path.join(kept, "y.npy"), "--test-images",
          os.path.join(kept, "x.npy"), "--test-labels", os.path.join(kept, "y.npy"),
          "--batch", "4", "--epochs", "1", "--out", kept, "--overwrite"], 1,
         "would write weights.safetensors over the input",
         check=unchanged(os.path.join(kept, "weights.safetensors"), before))
    case("train --dataset folder without --data", [train, "--dataset", "folder"], 2,
         "--dataset folder needs --data DIR")
    case("train --dataset folder --crop 4", [train] + flags + ["--data", good, "--crop", "4"], 2,
         "--dataset folder trains on RandomResizedCrop boxes")
    case("train --mean without --std", [train] + flags + ["--data", good, "--mean", "0.5"], 2,
         "--mean and --std go together")
    for std in ("0", "1e-50"):  # 1e-50 is 0 as a float
        case("train --std " + std, [train] + flags + ["--data", good, "--mean", "0.5", "--std",
             std, "--out", w + "/img-std"], 1, "--std takes numbers from 1e-30 to 1e+30")
    # val/ a link to itself (ELOOP): no evaluation folder, said, not thrown.
    looped = image_folder(os.path.join(w, "images-loop"))
    shutil.rmtree(os.path.join(looped, "val"))
    os.symlink("val", os.path.join(looped, "val"))
    case("train --dataset folder: val/ a link loop", [train] + flags + ["--data", looped,
         "--out", w + "/img-loop"], 1, "holds no val/ (or test/) folder of images")


def project_cases(q, root, w):
    """train and predict of a Fashion-MNIST project, on small IDX files."""
    fm = os.path.join(root, "examples", "fashion_mnist.qd")
    project = os.path.join(w, "fm")
    subprocess.run([q, "compile", fm, "--train", "--target=x86-64-avx2", "-o", project],
                   check=True, capture_output=True)
    build = subprocess.run([q, "build", project], capture_output=True, text=True)
    if build.returncode != 0:
        print(build.stdout[-3000:], build.stderr[-3000:])
        raise SystemExit("cannot build the training project")
    train = os.path.join(project, "build", "train")
    predict = os.path.join(project, "build", "predict")

    rng = np.random.default_rng(0)
    data = os.path.join(w, "data")
    os.makedirs(data, exist_ok=True)
    files = {}
    for split, n in (("train", 64), ("test", 32)):
        files[split + "-images"] = os.path.join(data, split + "-images.idx")
        files[split + "-labels"] = os.path.join(data, split + "-labels.idx")
        idx(files[split + "-images"], rng.integers(0, 256, (n, 28, 28)))
        idx(files[split + "-labels"], rng.integers(0, 10, n))
    small_test = os.path.join(data, "small-test-images.idx")
    idx(small_test, rng.integers(0, 256, (32, 14, 14)))
    bad_labels = os.path.join(data, "bad-train-labels.idx")
    labels = rng.integers(0, 10, 64)
    labels[5] = 12
    idx(bad_labels, labels)

    def data_flags(batch="16", **override):
        """The data and the run's flags; batch=None leaves --batch to the case
        (a flag twice is refused)."""
        f = dict(files, **override)
        return ["--dataset", "idx", "--train-images", f["train-images"], "--train-labels",
                f["train-labels"], "--test-images", f["test-images"], "--test-labels",
                f["test-labels"], "--threads", "2"] + (["--batch", batch] if batch else [])

    run1 = os.path.join(w, "run1")
    shutil.rmtree(run1, ignore_errors=True)
    case("train: a first run", [train] + data_flags() + ["--epochs", "1", "--out", run1], 0,
         "train: wrote")
    checkpoint = os.path.join(run1, "checkpoint.safetensors")
    before = digest(checkpoint)
    case("train --out an earlier run", [train] + data_flags() + ["--epochs", "1", "--out", run1],
         1, "holds an earlier run (checkpoint.safetensors, weights.safetensors, metrics.jsonl)",
         check=unchanged(checkpoint, before))
    def fresh_metrics():
        events = [json.loads(l)["event"] for l in open(os.path.join(run1, "metrics.jsonl"))]
        return [] if events.count("epoch") == 1 else [
            "the metrics log mixes runs: %d epoch events" % events.count("epoch")]
    case("train --overwrite replaces the run",
         [train] + data_flags() + ["--epochs", "1", "--overwrite", "--out", run1], 0,
         "train: wrote", check=fresh_metrics)
    case("train --resume with another --batch",
         [train] + data_flags(batch=None) + ["--epochs", "2", "--batch", "32", "--resume", "--out",
                                            run1],
         1, "was trained with a global batch of 16 examples, not 32")
    case("train --resume with another --weight-decay",
         [train] + data_flags() + ["--epochs", "2", "--weight-decay", "0.1", "--resume", "--out",
                                   run1], 1,
         "was trained with --weight-decay 0.05, not 0.1: resume with the flags the run started")
    case("train --resume with another --lr",
         [train] + data_flags() + ["--epochs", "2", "--lr", "0.001", "--resume", "--out", run1],
         0, "train: --lr 0.001 applied from step 4 (the checkpoint's run had 0.004)")
    case("train --epochs twice", [train] + data_flags() + ["--epochs", "2", "--epochs", "3"], 2,
         "--epochs is given twice; give it once")
    case("train --batch and --global-batch",
         [train] + data_flags(batch=None) + ["--batch", "16", "--global-batch", "32"], 2,
         "--batch (per process) and --global-batch (over all processes) say the same thing")
    case("train --global-batch 0", [train] + data_flags() + ["--global-batch", "0"], 2,
         "--global-batch needs an integer from 1 to 16777216")
    case("train --bucket-mb -1", [train] + data_flags() + ["--bucket-mb", "-1"], 2,
         "--bucket-mb needs a number from 0 to")
    case("train --comm-timeout 0", [train] + data_flags() + ["--comm-timeout", "0"], 2,
         "--comm-timeout needs a number from 1 to")
    # A launcher whose process count this build's MPI does not see: every
    # process would train alone.
    case("train under a launcher MPI does not see",
         ["env", "PMI_SIZE=2", train] + data_flags() + ["--out", w + "/pmi"], 1,
         "2 processes (PMI_SIZE=2)")
    case("train --epochs 2^62", [train] + data_flags() + ["--epochs", "4611686018427387904"], 2,
         "--epochs needs an integer from 1 to 100000")
    case("train --batch 2^31", [train] + data_flags(batch=None) + ["--batch", "2147483648"], 2,
         "--batch needs an integer from 1 to 65536")
    case("train --crop 2^32", [train] + data_flags() + ["--crop", "4294967296"], 2,
         "--crop needs an integer from 0 to 1024")
    case("train --min-lr above --lr", [train] + data_flags() + ["--lr", "1e-3", "--min-lr", "1"],
         2, "--min-lr 1 is above --lr 0.001")
    case("train --train-images without --dataset idx",
         [train, "--train-images", files["train-images"]], 2,
         "--train-images goes with --dataset idx")
    case("train: test split of another image size",
         [train] + data_flags(**{"test-images": small_test}) + ["--out", w + "/r2"], 1,
         "the test split's images are [14, 14, 1]")
    case("train: a training label out of range",
         [train] + data_flags(**{"train-labels": bad_labels}) + ["--out", w + "/r3"], 1,
         "%s: example 5 has label 12; expected 0 to 9" % bad_labels)
    case("train: a directory as the images file",
         [train] + data_flags(**{"train-images": data}) + ["--out", w + "/r4"], 1,
         "is a directory")

    image_folder_cases(train, w)

    # Checkpoints that training could not have written.
    tensors, meta = read_safetensors(checkpoint)
    for name, change, message in [
            ("a NaN first moment", ("adamw.m.", np.nan), "holds nan at element 0"),
            ("a negative second moment", ("adamw.v.", -1.0), "expected finite numbers >= 0"),
            ("beta2 = 1.5", ("qdsl.adamw.beta2", "1.5"), "qdsl.adamw.beta2 is 1.5; expected [0, 1)")]:
        t, m = {k: v.copy() for k, v in tensors.items()}, dict(meta)
        key, value = change
        if key.startswith("adamw."):
            target = sorted(k for k in t if k.startswith(key))[0]
            t[target].flat[0] = value
        else:
            m[key] = value
        bad = os.path.join(w, "bad-" + name.replace(" ", "_"))
        shutil.rmtree(bad, ignore_errors=True)
        os.makedirs(bad)
        write_tensors(os.path.join(bad, "checkpoint.safetensors"), t, m)
        case("checkpoint: " + name,
             [train] + data_flags() + ["--epochs", "2", "--resume", "--out", bad], 1, message)

    # predict.
    weights = os.path.join(run1, "weights.safetensors")
    x = os.path.join(w, "x28.npy")
    np.save(x, rng.standard_normal((2, 28, 28, 1)).astype(np.float32))
    x_before = digest(x)
    case("predict: --output the --input", [predict, "--input", x, "--output", x], 2,
         "the output '%s' is the input '%s'" % (x, x), check=unchanged(x, x_before))
    case("predict: --threads 2^64", [predict, "--input", x, "--output", w + "/y.npy",
                                     "--threads", "18446744073709551616"], 2,
         "--threads needs an integer from 0 to 1024")
    # predict reads its flags with the training programs' parser
    # (program_flags.h): each bad one named, exit 2, nothing written.
    for name, flags, message in [
            ("--repeat 0", ["--repeat", "0"], "--repeat needs an integer from 1 to 1000000, got '0'"),
            ("--seed -1", ["--seed", "-1"], "--seed needs an integer from 0 to"),
            ("--warmup 1e3", ["--warmup", "1e3"], "--warmup needs an integer from 0 to 1000000"),
            ("--weights (empty)", ["--weights", ""], "--weights needs a value"),
            ("--threads at the end", ["--threads"], "--threads needs a value"),
            ("--path 1,,2", ["--path", "1,,2"], "--path needs candidate indices (0 to 63)"),
            ("--path 64", ["--path", "64"], "--path needs candidate indices (0 to 63)"),
            ("an unknown flag", ["--repeats", "3"], "unknown option '--repeats'")]:
        case("predict: " + name, [predict, "--input", x, "--output", w + "/y-flags.npy"] + flags,
             2, message,
             check=lambda: ["wrote an output"] if os.path.exists(w + "/y-flags.npy") else [])
    nan_x = os.path.join(w, "nan-x28.npy")
    bad_x = rng.standard_normal((1, 28, 28, 1)).astype(np.float32)
    bad_x.flat[7] = np.inf
    np.save(nan_x, bad_x)
    case("predict: an infinite input", [predict, "--input", nan_x, "--output", w + "/y.npy"], 1,
         "'%s' holds inf at element 7" % nan_x)
    spaced = os.path.join(w, "spaced.npy")
    open(spaced, "wb").write(npy_header("{'descr': '<f4', 'fortran_order' : False , "
                                        "'shape': (1, 28, 28, 1), }") +
                             np.zeros((1, 28, 28, 1), "<f4").tobytes())
    case("predict: a valid header with spaces", [predict, "--weights", weights, "--input",
                                                 spaced, "--output", w + "/y.npy"], 0, "")
    odd = os.path.join(w, "odd-order.npy")
    open(odd, "wb").write(npy_header("{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,), }") +
                          b"\0" * 4)
    case("predict: fortran_order 'no'", [predict, "--input", odd, "--output", w + "/y.npy"], 1,
         "fortran_order is 'no'; expected True or False")
    # Precisions: tensor cores are the cuda target's.
    case("predict: --precision bf16 on the CPU", [predict, "--input", x, "--output",
                                                 w + "/y.npy", "--precision", "bf16"], 2,
         "--precision 'bf16': the x86-64-avx2 target computes in fp32 only")
    case("predict: --precision fp64", [predict, "--input", x, "--output", w + "/y.npy",
                                       "--precision", "fp64"], 2,
         "--precision 'fp64': expected fp32, tf32 or bf16")
    case("train: --precision tf32 on the CPU", [train, "--benchmark", "--precision", "tf32"], 2,
         "--precision 'tf32': the x86-64-avx2 target computes in fp32 only")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qdsl", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    w = os.path.join(args.work, "cases")
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    qdsl_cases(args.qdsl, args.root, w)
    disk_full_cases(args.qdsl, args.root, w)
    project_cases(args.qdsl, args.root, args.work)
    if FAILURES:
        print("%d hostile inputs were not handled: %s" % (len(FAILURES), ", ".join(FAILURES)))
        return 1
    print("every hostile input got a clear error (or worked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
