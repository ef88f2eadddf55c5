/**
 * Compiles the reference contracts in `contracts/` with the npm `solc` (solcjs) through standard JSON.
 * The output is cached in `build/contracts.json`, keyed by a hash of the sources, the compiler version and the
 * settings, so repeated test runs skip compilation (~1–2 s saved per run).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

export const CONTRACT_NAMES = ['SubnetControlPlane', 'TaskQueue', 'WorkflowEngine', 'Multicall3'] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface CompiledContract {
  abi: unknown[];
  /** 0x-prefixed creation bytecode. */
  bytecode: string;
}

export type CompiledContracts = Record<ContractName, CompiledContract>;

export interface CompileOptions {
  /** Directory holding the `.sol` sources; default `<repo>/contracts`. */
  contractsDir?: string;
  /** Cache file; default `<repo>/build/contracts.json`. */
  cacheFile?: string;
  /** Ignore the cache and recompile. */
  force?: boolean;
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Compiler settings; part of the cache key. cancun: supported by anvil 1.7.1's default hardfork and by L2s. */
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
} as const;

interface SolcOutput {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
}

interface CacheFile {
  key: string;
  compiler: string;
  contracts: CompiledContracts;
}

/** Compiles (or loads from cache) the four reference contracts. Throws with solc's messages on errors. */
export async function compileContracts(opts: CompileOptions = {}): Promise<CompiledContracts> {
  const contractsDir = opts.contractsDir ?? join(REPO_ROOT, 'contracts');
  const cacheFile = opts.cacheFile ?? join(REPO_ROOT, 'build', 'contracts.json');

  const sources: Record<string, { content: string }> = {};
  for (const file of readdirSync(contractsDir)
    .filter((f) => f.endsWith('.sol'))
    .sort()) {
    sources[`contracts/${file}`] = { content: readFileSync(join(contractsDir, file), 'utf8') };
  }
  const compilerVersion = String(solc.version());
  const key = createHash('sha256')
    .update(JSON.stringify({ compilerVersion, settings: SETTINGS, sources }))
    .digest('hex');

  if (!opts.force) {
    const cached = readCache(cacheFile);
    if (cached?.key === key) return cached.contracts;
  }

  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)) as string) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }

  const contracts = {} as CompiledContracts;
  for (const name of CONTRACT_NAMES) {
    const unit = output.contracts?.[`contracts/${name}.sol`]?.[name];
    if (!unit) throw new Error(`solc output has no contract ${name} (expected in contracts/${name}.sol)`);
    contracts[name] = { abi: unit.abi, bytecode: `0x${unit.evm.bytecode.object}` };
  }

  writeCache(cacheFile, { key, compiler: compilerVersion, contracts });
  return contracts;
}

function readCache(file: string): CacheFile | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
  } catch {
    return undefined;
  }
}

/** Writes through a temp file + rename so concurrent test processes never read a half-written cache. */
function writeCache(file: string, data: CacheFile): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data));
  renameSync(tmp, file);
}
