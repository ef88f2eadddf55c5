/**
 * The benchmarks' executor, run as its own process: the SDK (`src/wep`) serving one activity type, `bench.task`,
 * whose handler waits `ms` (input; default --ms) and returns no outputs. Prints `{"bench":"ready","port":N}` once
 * listening and nothing per task (so its output costs nothing at high rates).
 *
 *   bun scripts/bench/exec-proc.ts --port N [--concurrency 64] [--ms 0]
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/internal/logger.ts';
import { createExecutor, type HandlerContext, parseActivitySpec } from '../../src/wep/index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '64' },
    ms: { type: 'string', default: '0' },
  },
});

const SPEC = `
name: bench.task
version: 1
timeout_seconds: 86400
inputs:
  ms: { type: integer, minimum: 0, maximum: 86400000, default: ${Number(values.ms)} }
outputs:
  result: { key: result.txt, content_type: text/plain, required: false }
`;

async function task(ctx: HandlerContext): Promise<Record<string, string>> {
  const ms = Number(ctx.input.ms);
  if (ms > 0) {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(new Error('aborted'));
        },
        { once: true },
      );
    });
  }
  return {};
}

const executor = createExecutor({
  specs: [parseActivitySpec(SPEC, 'exec-proc.ts')],
  handlers: { 'bench.task': task },
  concurrency: Number(values.concurrency),
  host: '127.0.0.1',
  port: Number(values.port),
  logger: createLogger('bench-executor', { level: 'warn', json: true }),
});
const { port } = await executor.start();
process.stdout.write(`${JSON.stringify({ bench: 'ready', port })}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void executor.stop(1000).then(() => process.exit(0));
  });
}
