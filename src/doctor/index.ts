/**
 * `wcp doctor`: a preflight that sends no transaction. It loads the config (a bad one exits 3 before any check;
 * key and password file permissions are checked there), then checks the chain, the contracts, the wallet, the
 * executor, the subnet-api, the store and the clock. Exit 0 only when nothing failed.
 */
import type { WcpConfig } from '../config/load.ts';
import { chainChecks } from './chain-checks.ts';
import type { CheckResult } from './check.ts';
import { executorCheck, storeCheck, subnetApiCheck } from './link-checks.ts';

export type { CheckResult } from './check.ts';

/** Every check, in the order an operator fixes things. */
export async function runDoctor(config: WcpConfig): Promise<CheckResult[]> {
  const results: CheckResult[] = [
    { name: 'config', status: 'pass', detail: `${config.source}; wallet ${config.ethereum.walletAddress}` },
  ];
  results.push(...(await chainChecks(config)));
  const [executor, subnet] = await Promise.all([executorCheck(config), subnetApiCheck(config)]);
  results.push(executor, subnet, await storeCheck(config));
  return results;
}

const MARK: Record<CheckResult['status'], string> = { pass: 'ok  ', fail: 'FAIL', warn: 'warn', skip: 'skip' };

/** Human-readable lines: one per check, the fix indented below failures and warnings. */
export function formatDoctor(results: CheckResult[]): string {
  const lines = results.flatMap((r) => [
    `${MARK[r.status]}  ${r.name}: ${r.detail}`,
    ...(r.fix ? [`      → ${r.fix}`] : []),
  ]);
  const failed = results.filter((r) => r.status === 'fail').length;
  lines.push('', failed ? `${failed} check(s) failed` : 'all checks passed');
  return `${lines.join('\n')}\n`;
}
