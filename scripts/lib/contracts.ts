/**
 * Compiles the reference contracts in `contracts/` with the npm `solc` (solcjs) through standard JSON.
 * The output is cached in `build/contracts.json`, keyed by a hash of the sources, the compiler version and the
 * settings, so repeated test runs skip compilation (~1–2 s saved per run).
 *
 * `@openzeppelin/contracts/...` imports resolve from node_modules (the npm package is a devDependency). The batch
 * executor (`WcpBatchExecutor`, the EIP-7702 delegate) is compiled in a unit of its own without the CBOR metadata
 * trailer: its bytecode, and so its CREATE2 address, then depends only on the compiler and the code, not on source
 * paths or comments; `src/chain/batch-executor-code.ts` pins the result (regenerate it with
 * `bun scripts/gen-batch-executor.ts`; `test/contracts.test.ts` fails when it is stale).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

export const CONTRACT_NAMES = [
  'SubnetControlPlane',
  'TaskQueue',
  'WorkflowEngine',
  'Multicall3',
  'WcpBatchExecutor',
] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];
/** Compiled in its own unit, with `EXECUTOR_SETTINGS`. */
const EXECUTOR = 'WcpBatchExecutor';

export interface CompiledContract {
  abi: unknown[];
  /** 0x-prefixed creation bytecode. */
  bytecode: string;
  /** 0x-prefixed runtime bytecode (what `eth_getCode` returns once deployed: none of these has immutables). */
  deployedBytecode: string;
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
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
} as const;
/** The batch executor's settings: no metadata trailer, so its pinned bytecode survives path and comment changes. */
const EXECUTOR_SETTINGS = { ...SETTINGS, metadata: { appendCBOR: false } } as const;

const requireHere = createRequire(import.meta.url);

/** solc's import callback: `@openzeppelin/...` (any package path) from node_modules. */
function findImports(path: string): { contents: string } | { error: string } {
  try {
    return { contents: readFileSync(requireHere.resolve(path), 'utf8') };
  } catch (e) {
    return { error: `${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

interface SolcOutput {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string }[];
  contracts?: Record<
    string,
    Record<string, { abi: unknown[]; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>
  >;
}

interface CacheFile {
  key: string;
  compiler: string;
  contracts: CompiledContracts;
}

/** Compiles (or loads from cache) the reference contracts and the batch executor. Throws with solc's messages on errors. */
export async function compileContracts(opts: CompileOptions = {}): Promise<CompiledContracts> {
  const contractsDir = opts.contractsDir ?? join(REPO_ROOT, 'contracts');
  const cacheFile = opts.cacheFile ?? join(REPO_ROOT, 'build', 'contracts.json');

  const sources: Record<string, { content: string }> = {};
  const executorSources: Record<string, { content: string }> = {};
  for (const file of readdirSync(contractsDir)
    .filter((f) => f.endsWith('.sol'))
    .sort()) {
    const into = file === `${EXECUTOR}.sol` ? executorSources : sources;
    into[`contracts/${file}`] = { content: readFileSync(join(contractsDir, file), 'utf8') };
  }
  const compilerVersion = String(solc.version());
  const ozVersion = String((requireHere('@openzeppelin/contracts/package.json') as { version: string }).version);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        compilerVersion,
        ozVersion,
        settings: SETTINGS,
        executorSettings: EXECUTOR_SETTINGS,
        sources,
        executorSources,
      }),
    )
    .digest('hex');

  if (!opts.force) {
    const cached = readCache(cacheFile);
    if (cached?.key === key) return cached.contracts;
  }

  const units = [compileUnit(sources, SETTINGS), compileUnit(executorSources, EXECUTOR_SETTINGS)];
  const contracts = {} as CompiledContracts;
  for (const name of CONTRACT_NAMES) {
    const unit = units.map((u) => u[`contracts/${name}.sol`]?.[name]).find((u) => u !== undefined);
    if (!unit) throw new Error(`solc output has no contract ${name} (expected in contracts/${name}.sol)`);
    contracts[name] = {
      abi: unit.abi,
      bytecode: `0x${unit.evm.bytecode.object}`,
      deployedBytecode: `0x${unit.evm.deployedBytecode.object}`,
    };
  }

  writeCache(cacheFile, { key, compiler: compilerVersion, contracts });
  return contracts;
}

/** One standard-JSON compilation; throws with solc's messages on errors. */
function compileUnit(
  sources: Record<string, { content: string }>,
  settings: object,
): NonNullable<SolcOutput['contracts']> {
  if (Object.keys(sources).length === 0) return {};
  const input = { language: 'Solidity', sources, settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }) as string) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }
  return output.contracts ?? {};
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
