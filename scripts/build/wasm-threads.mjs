// esbuild plugin: lets the tfjs wasm backend start its threads under Node.js.
//
// tfjs-backend-wasm 4.22 hands Emscripten its pthread worker script and its own main script as Blob URLs,
// which Node's worker_threads cannot load (ERR_WORKER_PATH), and it reports no thread support under Node.
// The worker script itself supports Node (worker_threads, importScripts through fs + eval) when given file
// paths. This plugin rewrites the two Blob creations in backend_wasm.js so that, under Node, both scripts are
// written to files and passed as paths; browsers keep Blobs.
// (The worker text is the one tfjs puts in its Blob, newlines inside string literals escaped.)
// Whether threads are used is still decided by the engine (src/engine/backend.ts sets the flag and the count).
import { readFile } from 'node:fs/promises';

// Written into a private folder made for this process (mkdtemp: mode 0700, unique name) and removed at exit:
// a shared, predictable path in the temp folder could be planted by another user and run as this one.
const NODE_FILE = `((name, text) => {
  const fs = require('fs'), path = require('path'), os = require('os');
  const g = globalThis;
  if (!g.__sculptWasmScripts) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sculpt-wasm-'));
    g.__sculptWasmScripts = dir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const file = path.join(g.__sculptWasmScripts, name);
  // Once per process: each new worker asks again, and rewriting the file under a worker that is still
  // reading it would hand that worker a truncated script.
  if (!fs.existsSync(file)) fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
})`;
const IS_NODE = `(typeof process === 'object' && process.versions != null && process.versions.node != null)`;

const WORKER_BLOB = `const blob = new Blob([response], { type: 'application/javascript' });
                return URL.createObjectURL(blob);`;
const MAIN_BLOB =
  "factoryConfig.mainScriptUrlOrBlob = new Blob([`var WasmBackendModuleThreadedSimd = ` +\n                    wasmFactoryThreadedSimd.toString()], { type: 'text/javascript' });";

// The C++ side caps its thread pool at emscripten_num_logical_cores() / 2 (it assumes two hyperthreads per
// core), so a 2-vCPU machine would get one thread whatever is asked. Report twice the usable cores: the pool
// size then follows setThreadsCount (itself capped by the engine at the cores this process may use).
const CORES = 'function _emscripten_num_logical_cores(){if(ENVIRONMENT_IS_NODE)return require("os").cpus().length;';
const CORES_NODE =
  'function _emscripten_num_logical_cores(){if(ENVIRONMENT_IS_NODE)return 2*require("os").availableParallelism();';

// A running pthread holds the Node process open (Emscripten ref()s its worker); XNNPACK's pool threads run for
// the whole process, waiting for work, so nothing would ever exit. tfjs only uses them synchronously from the
// main thread, so they can stay unref()ed like idle ones.
const REF = 'worker.runPthread=()=>{if(ENVIRONMENT_IS_NODE){worker.ref()}';
const NO_REF = 'worker.runPthread=()=>{';

export const wasmThreadsPlugin = {
  name: 'sculpt-wasm-threads',
  setup(build) {
    build.onLoad(
      { filter: /tfjs-backend-wasm[\\/]wasm-out[\\/]tfjs-backend-wasm-threaded-simd\.js$/ },
      async (args) => {
        const src = await readFile(args.path, 'utf8');
        if (!src.includes(CORES) || !src.includes(REF))
          throw new Error(`${args.path}: the code this plugin rewrites has changed (tfjs-backend-wasm upgraded?)`);
        return { contents: src.replace(CORES, CORES_NODE).replace(REF, NO_REF), loader: 'js' };
      },
    );
    build.onLoad({ filter: /tfjs-backend-wasm[\\/]dist[\\/]backend_wasm\.js$/ }, async (args) => {
      let src = await readFile(args.path, 'utf8');
      if (!src.includes(WORKER_BLOB) || !src.includes(MAIN_BLOB)) {
        throw new Error(`${args.path}: the code this plugin rewrites has changed (tfjs-backend-wasm upgraded?)`);
      }
      src = src.replace(
        WORKER_BLOB,
        `if (${IS_NODE}) return ${NODE_FILE}('tfjs-wasm-threaded.worker.js', response);\n                ${WORKER_BLOB}`,
      );
      src = src.replace(
        MAIN_BLOB,
        `factoryConfig.mainScriptUrlOrBlob = ${IS_NODE} ? ${NODE_FILE}('tfjs-wasm-threaded.main.js', 'var WasmBackendModuleThreadedSimd = ' + wasmFactoryThreadedSimd.toString()) : new Blob([\`var WasmBackendModuleThreadedSimd = \` +\n                    wasmFactoryThreadedSimd.toString()], { type: 'text/javascript' });`,
      );
      return { contents: src, loader: 'js' };
    });
  },
};
