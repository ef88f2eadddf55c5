/**
 * Builds wcp as a plain-JS bundle for Node (>= 20): the same `src/` as the binary, so Node compatibility of the
 * core is checked by running it (test/node-compat.test.ts), not only claimed.
 *
 *   bun scripts/build-node.ts [--out build/node]
 *   node build/node/src/main.js run
 *
 * Packages stay external (lmdb's native addon, grpc-js, ethers, piscina, …): Node resolves them from the
 * `node_modules` beside or above the output, so the output goes inside the project tree (default `build/node`) or
 * into a directory given a `node_modules` link. Entry `src/main.js`, pool worker `src/supervisor/worker-entry.js`,
 * which `src/runtime/workers.ts` finds through the `WCP_BUNDLED_WORKER` constant.
 */
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { headCommit, versionString } from './build.ts';

const ROOT = resolve(import.meta.dir, '..');

export async function buildNodeBundle(out: string): Promise<{ main: string }> {
  const pkg = (await Bun.file(join(ROOT, 'package.json')).json()) as { dependencies?: Record<string, string> };
  rmSync(out, { recursive: true, force: true });
  const result = await Bun.build({
    entrypoints: [join(ROOT, 'src/main.ts'), join(ROOT, 'src/supervisor/worker-entry.ts')],
    root: ROOT,
    outdir: out,
    target: 'node',
    format: 'esm',
    external: Object.keys(pkg.dependencies ?? {}),
    define: {
      WCP_VERSION: JSON.stringify(`${await versionString()}-node`),
      WCP_COMMIT: JSON.stringify(headCommit().commit),
      WCP_BUNDLED_WORKER: JSON.stringify('./supervisor/worker-entry.js'),
    },
    throw: false,
  });
  if (!result.success) throw new Error(`bun build --target node failed:\n${result.logs.map(String).join('\n')}`);
  const main = join(out, 'src', 'main.js');
  if (!existsSync(main) || !existsSync(join(out, 'src', 'supervisor', 'worker-entry.js'))) {
    throw new Error(`build reported success but ${out}/src is incomplete`);
  }
  return { main };
}

if (import.meta.main) {
  const i = process.argv.indexOf('--out');
  const out = resolve(i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : join(ROOT, 'build', 'node'));
  const { main } = await buildNodeBundle(out);
  console.log(`built ${main} (run: node ${main} run)`);
}
