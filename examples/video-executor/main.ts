/**
 * The example executor: serves `video.preprocess` to wcp over TaskStream.
 *
 * For each task it downloads the input video from its presigned GET URL into a temp dir, runs `preprocessVideo`,
 * uploads `video.mp4`, `thumbnail.jpg` and `probe.json` with PUTs to their presigned URLs (asking wcp with a
 * StorageRequest when the assignment carried none), and returns their blob references.
 *
 *   bun examples/video-executor/main.ts [--host 127.0.0.1] [--port 7070] [--concurrency 2] [--specs activity-specs]
 *                                       [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
 * Env: WEP_HOST, WEP_PORT, WEP_CONCURRENCY, WEP_SPECS_DIR, WEP_TLS_CERT_FILE, WEP_TLS_KEY_FILE,
 * WEP_TLS_CLIENT_CA_FILE (flags win). SIGINT/SIGTERM stop it gracefully. Serving off loopback, give the TLS
 * files and the client CA that signed wcp's `executor.tls_cert_file`: wcp then connects over mTLS, and nothing
 * else can.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WcpError, errorText } from '../../src/internal/errors.ts';
import { createLogger } from '../../src/internal/logger.ts';
import { type HandlerContext, createExecutor, loadActivitySpecs, readExecutorTls } from '../../src/wep/index.ts';
import { preprocessVideo } from './preprocess.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    concurrency: { type: 'string' },
    specs: { type: 'string' },
    'grace-ms': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-client-ca': { type: 'string' },
  },
});
const host = values.host ?? process.env.WEP_HOST ?? '127.0.0.1';
const port = Number(values.port ?? process.env.WEP_PORT ?? 7070);
const concurrency = Number(values.concurrency ?? process.env.WEP_CONCURRENCY ?? 2);
const specsDir = values.specs ?? process.env.WEP_SPECS_DIR ?? new URL('../../activity-specs', import.meta.url).pathname;
const graceMs = Number(values['grace-ms'] ?? 30_000);
const tls = readExecutorTls({
  certFile: values['tls-cert'] ?? process.env.WEP_TLS_CERT_FILE,
  keyFile: values['tls-key'] ?? process.env.WEP_TLS_KEY_FILE,
  clientCaFile: values['tls-client-ca'] ?? process.env.WEP_TLS_CLIENT_CA_FILE,
});
const log = createLogger('video-executor');

if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${port}`);
if (!Number.isInteger(concurrency) || concurrency < 1)
  throw new Error(`--concurrency must be a positive integer, got ${concurrency}`);

const OUTPUTS = [
  { name: 'video', key: 'video.mp4', file: 'video' },
  { name: 'thumbnail', key: 'thumbnail.jpg', file: 'thumbnail' },
  { name: 'probe', key: 'probe.json', file: 'probe' },
] as const;

async function urlFor(ctx: HandlerContext, key: string, method: 'GET' | 'PUT', given: string | undefined) {
  if (given !== undefined) return { url: given, headers: {} as Record<string, string> };
  const g = await ctx.requestStorage(key, method);
  return { url: g.url, headers: g.headers };
}

async function preprocess(ctx: HandlerContext): Promise<Record<string, string>> {
  const dir = await mkdtemp(join(tmpdir(), `wep-${ctx.activityId}-`));
  try {
    const ref = String(ctx.input.video);
    const src = await urlFor(ctx, ref, 'GET', ctx.inputUrls[ref]);
    const res = await fetch(src.url, { headers: src.headers, signal: ctx.signal });
    if (!res.ok)
      throw new WcpError('STORAGE_UNAVAILABLE', `download of ${ref} failed: HTTP ${res.status}`, {
        retryable: res.status >= 500,
      });
    const inputPath = join(dir, 'input');
    await writeFile(inputPath, new Uint8Array(await res.arrayBuffer()));
    ctx.progress(0.05, 'downloaded');

    const { outputs, metadata } = await preprocessVideo({
      inputPath,
      outDir: join(dir, 'out'),
      width: Number(ctx.input.width),
      height: Number(ctx.input.height),
      fps: Number(ctx.input.fps),
      onProgress: (f) => ctx.progress(0.05 + f * 0.85, 'transcoding'),
      signal: ctx.signal,
    });

    const refs: Record<string, string> = {};
    for (const [i, o] of OUTPUTS.entries()) {
      const path = outputs[o.file];
      const spec = await urlFor(ctx, o.key, 'PUT', ctx.outputUrls[o.key]);
      const contentType = o.key.endsWith('.mp4')
        ? 'video/mp4'
        : o.key.endsWith('.jpg')
          ? 'image/jpeg'
          : 'application/json';
      const put = await fetch(spec.url, {
        method: 'PUT',
        body: await readFile(path.startsWith('/') ? path : join(dir, 'out', path)),
        headers: { 'content-type': contentType, ...spec.headers },
        signal: ctx.signal,
      });
      if (!put.ok)
        throw new WcpError('STORAGE_UNAVAILABLE', `upload of ${o.key} failed: HTTP ${put.status}`, {
          retryable: put.status >= 500,
        });
      refs[o.name] = ctx.outputRef(o.name);
      ctx.progress(0.9 + ((i + 1) / OUTPUTS.length) * 0.1, `uploaded ${o.key}`);
    }
    ctx.setMetadata(metadata as unknown as Record<string, unknown>);
    return refs;
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

const specs = await loadActivitySpecs(specsDir);
const spec = specs.get('video.preprocess');
if (spec === undefined) throw new Error(`no video.preprocess spec in ${specsDir}`);
const executor = createExecutor({
  specs: [spec],
  handlers: { 'video.preprocess': preprocess },
  concurrency,
  host,
  port,
  ...(tls !== undefined ? { tls } : {}),
  logger: log,
});
const { port: bound } = await executor.start();
log.info('Video executor ready.', { host, port: bound, concurrency });

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log.info('Stopping.', { signal: sig, grace_ms: graceMs });
    executor
      .stop(graceMs)
      .then(() => process.exit(0))
      .catch((e: unknown) => {
        log.error('Stop failed.', { error: errorText(e) });
        process.exit(1);
      });
  });
}
