#!/usr/bin/env -S node --no-warnings
// Runs a wasm32-wasip1 program (a test binary, as cargo's runner) under Node.js's WASI:
// `node scripts/wasi-run.mjs prog.wasm [args...]`. Exits with the program's status.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [wasmPath, ...args] = process.argv.slice(2);
if (!wasmPath) {
  console.error("usage: wasi-run.mjs PROGRAM.wasm [ARGS...]");
  process.exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [wasmPath, ...args],
  env: process.env,
  preopens: { ".": process.cwd(), "/": "/" },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
