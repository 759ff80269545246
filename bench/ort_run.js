// Runs an ONNX model (qdsl export --format onnx) with ONNX Runtime's CPU
// execution provider, from Node (npm's onnxruntime-node, installed by
// scripts/setup.sh). Reads the input from a .npy file (float32, C order) and
// writes the output as .npy; with --repeat N it also times N runs and
// prints one JSON line {"seconds": [...]} (the first run, which prepares
// the session, is not counted).
//
//   node bench/ort_run.js --model M.onnx --input X.npy --output Y.npy
//        [--threads 2] [--mode sequential|parallel] [--optimization all|basic|extended|disabled]
//        [--repeat N] [--warmup N]
//
// NODE_PATH (or QDSL_NODE_MODULES) names the node_modules folder that holds
// onnxruntime-node; scripts/setup.sh puts it in /usr/local/lib/qdsl-node.
"use strict";
const fs = require("fs");
const path = require("path");

function loadOrt() {
  const places = [process.env.QDSL_NODE_MODULES, "/usr/local/lib/qdsl-node/node_modules"]
    .filter(Boolean);
  for (const dir of places) {
    try {
      return require(path.join(dir, "onnxruntime-node"));
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND") throw e;
    }
  }
  return require("onnxruntime-node");
}

function readNpy(file) {
  const data = fs.readFileSync(file);
  if (data.length < 10 || data.toString("latin1", 0, 6) !== "\x93NUMPY")
    throw new Error(file + ": not a .npy file");
  const major = data[6];
  const headerLength = major === 1 ? data.readUInt16LE(8) : data.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = data.toString("latin1", start, start + headerLength);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(file + ": expected float32 ('<f4') in C order, header " + header.trim());
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)[1];
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length)
    .map((s) => parseInt(s, 10));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  if (data.length - offset < count * 4)
    throw new Error(file + ": " + (data.length - offset) + " bytes of data for shape (" + shape + ")");
  const values = new Float32Array(count);
  for (let i = 0; i < count; ++i) values[i] = data.readFloatLE(offset + 4 * i);
  return { shape, values };
}

function writeNpy(file, shape, values) {
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
    shape.join(", ") + (shape.length === 1 ? "," : "") + "), }";
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; ++i) body.writeFloatLE(values[i], 4 * i);
  const temporary = file + ".tmp" + process.pid;
  fs.writeFileSync(temporary, Buffer.concat([head, Buffer.from(header, "latin1"), body]));
  fs.renameSync(temporary, file);
}

function parseArguments(argv) {
  const options = { threads: 2, mode: "sequential", optimization: "all", repeat: 0, warmup: 2 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i], value = argv[i + 1];
    if (value === undefined) throw new Error(flag + " needs a value");
    switch (flag) {
      case "--model": options.model = value; break;
      case "--input": options.input = value; break;
      case "--output": options.output = value; break;
      case "--threads": options.threads = parseInt(value, 10); break;
      case "--mode": options.mode = value; break;
      case "--optimization": options.optimization = value; break;
      case "--repeat": options.repeat = parseInt(value, 10); break;
      case "--warmup": options.warmup = parseInt(value, 10); break;
      default: throw new Error("unknown flag " + flag);
    }
  }
  if (!options.model || !options.input) throw new Error("--model and --input are needed");
  if (!["sequential", "parallel"].includes(options.mode))
    throw new Error("--mode must be sequential or parallel");
  if (!["all", "basic", "extended", "disabled"].includes(options.optimization))
    throw new Error("--optimization must be all, basic, extended or disabled");
  return options;
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(options.model, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: options.optimization,
    executionMode: options.mode,
    intraOpNumThreads: options.threads,
    interOpNumThreads: options.mode === "parallel" ? options.threads : 1,
  });
  const x = readNpy(options.input);
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", x.values, x.shape) };
  let result = await session.run(feeds);
  for (let i = 0; i < options.warmup && options.repeat > 0; ++i) result = await session.run(feeds);
  const seconds = [];
  for (let i = 0; i < options.repeat; ++i) {
    const start = process.hrtime.bigint();
    result = await session.run(feeds);
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  const y = result[session.outputNames[0]];
  if (options.output) writeNpy(options.output, y.dims, y.data);
  if (options.repeat > 0) console.log(JSON.stringify({ seconds, version: ort.env.versions.common }));
}

main().catch((e) => {
  console.error("ort_run: " + (e && e.message ? e.message : e));
  process.exit(1);
});
