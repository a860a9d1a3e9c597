#!/usr/bin/env node
// Compiles contracts/<Name>.sol with solcjs (standard-JSON interface) and writes
// contracts/build/<Name>.json. Driven by scripts/build_contracts.sh; see contracts/README.md.
//
// Usage: node scripts/solc_build.js --solc <dir containing node_modules/solc> \
//          --expect-version <x.y.z> --evm-version <fork> <contracts dir> <Name> [<Name> ...]
//
// The output depends only on the source text, the compiler version and the settings below:
// sources are passed by bare file name (no absolute paths end up in the metadata), and the
// JSON is written with a fixed key order, so a rebuild with the same inputs is byte-identical.
'use strict';

const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`solc_build: error: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { solc: null, expectVersion: null, evmVersion: 'cancun', positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--solc') opts.solc = next();
    else if (a === '--expect-version') opts.expectVersion = next();
    else if (a === '--evm-version') opts.evmVersion = next();
    else if (a.startsWith('--')) die(`unknown option ${a}`);
    else opts.positional.push(a);
  }
  if (!opts.solc) die('--solc <dir> is required');
  if (opts.positional.length < 2) die('usage: solc_build.js --solc DIR [--expect-version V] [--evm-version E] CONTRACTS_DIR NAME...');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const [contractsDir, ...names] = opts.positional;

const solcPath = path.resolve(opts.solc, 'node_modules', 'solc');
let solc;
try {
  solc = require(solcPath);
} catch (e) {
  die(`cannot load solc from ${solcPath} (${e.message}); run scripts/build_contracts.sh to install it`);
}
const fullVersion = solc.version();
if (opts.expectVersion && !fullVersion.startsWith(opts.expectVersion + '+')) {
  die(`solc at ${solcPath} is ${fullVersion}, expected ${opts.expectVersion}`);
}

const optimizer = { enabled: true, runs: 200 };
const sources = {};
for (const name of names) {
  const file = path.join(contractsDir, `${name}.sol`);
  if (!fs.existsSync(file)) die(`source not found: ${file}`);
  sources[`${name}.sol`] = { content: fs.readFileSync(file, 'utf8') };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer,
    evmVersion: opts.evmVersion,
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences', 'storageLayout'] },
    },
  },
};

let output;
try {
  output = JSON.parse(solc.compile(JSON.stringify(input)));
} catch (e) {
  die(`solc failed: ${e.message}`);
}

let failed = false;
for (const err of output.errors || []) {
  process.stderr.write((err.formattedMessage || err.message) + '\n');
  if (err.severity === 'error') failed = true;
}
if (failed) die('compilation failed');

const outDir = path.join(contractsDir, 'build');
fs.mkdirSync(outDir, { recursive: true });

for (const name of names) {
  const c = output.contracts && output.contracts[`${name}.sol`] && output.contracts[`${name}.sol`][name];
  if (!c) die(`no contract named ${name} in ${name}.sol`);
  const bytecode = c.evm.bytecode.object;
  const deployed = c.evm.deployedBytecode.object;
  if (!bytecode || !deployed) die(`${name}: empty bytecode (abstract contract or interface?)`);
  const storage = (c.storageLayout && c.storageLayout.storage || []).map((s) => ({
    label: s.label, slot: Number(s.slot), offset: s.offset, type: s.type,
  }));
  const artifact = {
    contractName: name,
    sourceName: `contracts/${name}.sol`,
    abi: c.abi,
    bytecode: '0x' + bytecode,
    deployedBytecode: '0x' + deployed,
    hasImmutables: Object.keys(c.evm.deployedBytecode.immutableReferences || {}).length > 0,
    storageLayout: storage,
    compiler: {
      name: 'solc',
      version: fullVersion,
      evmVersion: opts.evmVersion,
      optimizer,
    },
  };
  const outFile = path.join(outDir, `${name}.json`);
  fs.writeFileSync(outFile, JSON.stringify(artifact, null, 2) + '\n');
  process.stdout.write(`wrote ${outFile} (${(bytecode.length / 2) | 0} bytes creation, ${(deployed.length / 2) | 0} bytes runtime)\n`);
}
