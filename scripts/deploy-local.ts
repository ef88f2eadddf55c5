/**
 * Deploys the reference contract stack to a running node and prints the addresses as JSON. Starts nothing.
 *
 *   bun scripts/deploy-local.ts --rpc http://127.0.0.1:8545 [--key 0x…] [--heartbeat-timeout 60] [--lifetime 10800]
 *
 * The key defaults to anvil account 0, which yields `ANVIL_DEFAULT_ADDRESSES` on a fresh anvil.
 */
import { parseArgs } from 'node:util';
import { devAccounts } from './lib/anvil.ts';
import { BATCH_EXECUTOR } from '../src/chain/batch-executor.ts';
import { DEFAULT_HEARTBEAT_TIMEOUT_S, DEFAULT_LIFETIME_S, deployStack } from './lib/deploy.ts';

const { values } = parseArgs({
  options: {
    rpc: { type: 'string', default: 'http://127.0.0.1:8545' },
    key: { type: 'string' },
    'heartbeat-timeout': { type: 'string', default: String(DEFAULT_HEARTBEAT_TIMEOUT_S) },
    lifetime: { type: 'string', default: String(DEFAULT_LIFETIME_S) },
  },
});

const deployerKey = values.key ?? devAccounts(1)[0]?.privateKey;
if (!deployerKey) throw new Error('no deployer key');
const heartbeatTimeoutS = Number(values['heartbeat-timeout']);
const lifetimeS = Number(values.lifetime);
if (!Number.isInteger(heartbeatTimeoutS) || heartbeatTimeoutS <= 0)
  throw new Error('--heartbeat-timeout: want a positive integer (seconds)');
if (!Number.isInteger(lifetimeS) || lifetimeS <= 0) throw new Error('--lifetime: want a positive integer (seconds)');

const stack = await deployStack({ rpcUrl: values.rpc, deployerKey, heartbeatTimeoutS, lifetimeS, batchExecutor: true });
console.log(
  JSON.stringify({ chainId: stack.chainId, ...stack.addresses, batchExecutor: BATCH_EXECUTOR.address }, null, 2),
);
stack.destroy();
