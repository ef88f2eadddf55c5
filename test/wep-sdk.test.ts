/**
 * The executor SDK: spec parsing, and handlers driven by the real bridge over loopback gRPC.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { type ExecutorBridge, type StorageBrokerLike, createExecutorBridge } from '../src/executor/bridge.ts';
import type { TaskSpec, ExecutorEvent } from '../src/executor/messages.ts';
import { type ClientDuplexStream, type ServiceError, credentials, status } from '@grpc/grpc-js';
import { isWcpError } from '../src/internal/errors.ts';
import { createLogger } from '../src/internal/logger.ts';
import { PROTOCOL_VERSION, type WcpMessageWire, loadExecutorService } from '../src/taskstream/protocol.ts';
import { type Handler, createExecutor, loadActivitySpecs, parseActivitySpec } from '../src/wep/index.ts';
import { until, untilTrue } from '../src/internal/testing/until.ts';

const quiet = () => createLogger('t', { level: 'error', json: true, write: () => {} });
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
}, 60_000);

const SPEC = `
name: test.echo
version: 2
timeout_seconds: 60
inputs:
  text: { type: string, max_length: 20 }
  times: { type: integer, minimum: 1, maximum: 5, default: 1 }
  wait_ms: { type: integer, minimum: 0, default: 0 }
  src: { type: blob, required: false }
outputs:
  result: { key: result.txt, content_type: text/plain }
`;

function specError(yaml: string): string {
  try {
    parseActivitySpec(yaml, 'bad.yaml');
  } catch (e) {
    expect(isWcpError(e, 'ACTIVITY_SPEC_INVALID')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('spec was accepted');
}

describe('activity specs', () => {
  test('a bad spec names the file and the field', () => {
    const base = 'name: t.x\nversion: 1\noutputs: { r: { key: r.bin } }\n';
    expect(specError('version: 1\noutputs: { r: { key: r.bin } }')).toContain('bad.yaml: name: is required');
    expect(specError(`${base}inputs: { w: { type: float } }`)).toContain('inputs.w.type');
    expect(specError(`${base}inputs: { w: { type: integer, minimum: abc } }`)).toContain('inputs.w.minimum');
    expect(specError(`${base}inputs: { w: { type: integer, default: 2.5 } }`)).toContain('inputs.w.default');
    expect(specError(`${base}inputs: { w: { type: integer, minimum: 5, maximum: 1 } }`)).toContain('inputs.w.minimum');
    expect(specError(`${base}inputs: { s: { type: string, pattern: "([" } }`)).toContain('inputs.s.pattern');
    expect(specError(`${base}inputs: { s: { type: string, colour: red } }`)).toContain('inputs.s.colour');
    expect(specError('name: t.x\nversion: 1\noutputs: { r: { key: ../r } }')).toContain('outputs.r.key');
    expect(specError('name: t.x\nversion: 1')).toContain('outputs');
    expect(specError('name: [unclosed')).toContain('not valid YAML');
  });

  test('the shipped specs load, with defaults bound', async () => {
    const specs = await loadActivitySpecs(new URL('../activity-specs', import.meta.url).pathname);
    const video = specs.get('video.preprocess');
    expect(video).toBeDefined();
    expect(
      Object.values(video?.outputs ?? {})
        .map((o) => o.key)
        .sort(),
    ).toEqual(['probe.json', 'thumbnail.jpg', 'video.mp4']);
    expect(video?.inputs.video?.type).toBe('blob');
    expect(video?.inputs.width?.default).toBe(1280);
  });
});

// ---- SDK driven by the real bridge -----------------------------------------------------------------------------

function events() {
  const list: ExecutorEvent[] = [];
  const waitFor = async (pred: (e: ExecutorEvent) => boolean, timeoutMs = 5000): Promise<ExecutorEvent> =>
    (await until(
      () => list.find(pred),
      (hit) => hit !== undefined,
      timeoutMs,
      () => `an event; events: ${JSON.stringify(list.slice(-10))}`,
      5,
    )) as ExecutorEvent;
  return { list, emit: (e: ExecutorEvent) => list.push(e), waitFor };
}

type Completion = Extract<ExecutorEvent, { type: 'completion' }>;
const completionOf = (id: string) => (e: ExecutorEvent) => e.type === 'completion' && e.activity_id === id;

const WORKER = '0x0000000000000000000000000000000000000001';

async function startExecutor(handler: Handler, opts: { concurrency?: number; staleStreamMs?: number } = {}) {
  const exec = createExecutor({
    specs: [parseActivitySpec(SPEC, 'echo.yaml')],
    handlers: { 'test.echo': handler },
    concurrency: opts.concurrency ?? 2,
    port: 0,
    logger: quiet(),
    ...(opts.staleStreamMs !== undefined ? { staleStreamMs: opts.staleStreamMs } : {}),
  });
  const { port } = await exec.start();
  cleanups.push(() => exec.stop(0));
  return { exec, port };
}

async function setup(handler: Handler, opts: { broker?: StorageBrokerLike; concurrency?: number } = {}) {
  const { exec, port } = await startExecutor(handler, opts);
  const { bridge, ev } = await connectBridge(port, opts.broker);
  return { exec, bridge, ev, port };
}

/** A real bridge (what a wcp runs) connected to the executor on `port`, once ready (unless `wait: false`). */
async function connectBridge(
  port: number,
  broker?: StorageBrokerLike,
  opts: { workerAddress?: string; wait?: boolean } = {},
) {
  const ev = events();
  const bridge: ExecutorBridge = createExecutorBridge({
    endpoint: `127.0.0.1:${port}`,
    maxInflight: 4,
    keepaliveIntervalMs: 500,
    keepaliveTimeoutMs: 2000,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    maxMessageBytes: 1024 * 1024,
    workerAddress: opts.workerAddress ?? WORKER,
    logger: quiet(),
    emit: ev.emit,
    ...(broker ? { broker } : {}),
  });
  cleanups.push(() => bridge.stop());
  bridge.start();
  if (opts.wait !== false) await ev.waitFor((e) => e.type === 'state' && e.state === 'ready');
  return { bridge, ev };
}

/**
 * A bare TaskStream client on loopback: answers Hello with an accepted HelloAck naming `workerAddress` (or none),
 * then records what it receives and says nothing more — a probe, or a wcp whose stream went half-open.
 */
function rawClient(port: number, workerAddress: string | undefined) {
  const Executor = loadExecutorService();
  const client = new Executor(`127.0.0.1:${port}`, credentials.createInsecure());
  const call = (
    client as unknown as { TaskStream(): ClientDuplexStream<WcpMessageWire, Record<string, unknown>> }
  ).TaskStream();
  const got: Array<Record<string, unknown>> = [];
  const out = { got, error: undefined as ServiceError | undefined, ended: false, call };
  call.on('data', (m: Record<string, unknown>) => {
    got.push(m);
    if (m.msg === 'hello') {
      call.write({
        hello_ack: {
          protocol_version: PROTOCOL_VERSION,
          wcp_version: 'raw',
          accepted: true,
          reason: '',
          acks_completions: true,
          ...(workerAddress !== undefined ? { worker_address: workerAddress } : {}),
        },
      });
    }
  });
  call.on('error', (e: ServiceError) => {
    out.error = e;
  });
  call.on('end', () => {
    out.ended = true;
  });
  cleanups.push(() => {
    call.cancel();
    client.close();
  });
  return out;
}

const OTHER = '0x0000000000000000000000000000000000000002';
const stateError = (code: string) => (e: ExecutorEvent) => e.type === 'state' && e.error?.code === code;

let n = 0;
function task(input: unknown, extra: Partial<TaskSpec> = {}): TaskSpec {
  n += 1;
  return {
    activity_id: `77${n}`,
    activity_type: 'test.echo',
    input_ref: `json:${JSON.stringify(input)}`,
    queue_name: 'q',
    deadline_unix_ms: Date.now() + 60_000,
    attempt: 1,
    ...extra,
  };
}

function waitAbortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    });
  });
}

describe('executor SDK', () => {
  test('valid input runs the handler with defaults; progress and metadata reach wcp', async () => {
    const { bridge, ev } = await setup(async (ctx) => {
      ctx.progress(0.5, 'half');
      ctx.setMetadata({ echoed: String(ctx.input.text).repeat(Number(ctx.input.times)) });
      return { result: ctx.outputRef('result') };
    });
    const t = task({ text: 'hi' });
    await bridge.assign(t);
    const c = (await ev.waitFor(completionOf(t.activity_id))) as Completion;
    expect(c.result).toEqual({
      ok: true,
      output_refs: { result: `blob:${t.activity_id}/result.txt` },
      metadata_json: '{"echoed":"hi"}',
    });
    // The SDK's own Progress at the start says the task runs; then the handler's.
    expect(ev.list.filter((e) => e.type === 'progress' && e.activity_id === t.activity_id)).toEqual([
      { type: 'progress', activity_id: t.activity_id, fraction: 0, message: 'started' },
      { type: 'progress', activity_id: t.activity_id, fraction: 0.5, message: 'half' },
    ]);
  });

  test('invalid input fails with INPUT_INVALID naming the field, without running the handler', async () => {
    let calls = 0;
    const { bridge, ev } = await setup(async (ctx) => {
      calls += 1;
      return { result: ctx.outputRef('result') };
    });
    const cases = [{ text: 'x', times: 9 }, { times: 1 }, { text: 'x', extra: true }, { text: 'x', src: 'not-a-blob' }];
    for (const input of cases) {
      const t = task(input);
      await bridge.assign(t);
      const c = (await ev.waitFor(completionOf(t.activity_id))) as Completion;
      expect(c.result).toMatchObject({ ok: false, code: 'INPUT_INVALID', retryable: false });
    }
    const msgs = ev.list
      .filter((e): e is Completion => e.type === 'completion')
      .map((c) => (c.result.ok ? '' : c.result.message));
    expect(msgs[0]).toContain('times');
    expect(msgs[1]).toContain('text');
    expect(msgs[2]).toContain('extra');
    expect(msgs[3]).toContain('src');
    expect(calls).toBe(0);
  });

  test('bad outputs give OUTPUT_INVALID; a throwing handler gives HANDLER_ERROR with its retryable flag', async () => {
    let mode = 'bad-ref';
    const { bridge, ev } = await setup(async () => {
      if (mode === 'bad-ref') return { result: 'blob:somebody-else/x' };
      if (mode === 'missing') return {};
      throw Object.assign(new Error('boom'), { retryable: false });
    });
    const results: unknown[] = [];
    for (const m of ['bad-ref', 'missing', 'throw']) {
      mode = m;
      const t = task({ text: 'x' });
      await bridge.assign(t);
      results.push(((await ev.waitFor(completionOf(t.activity_id))) as Completion).result);
    }
    expect(results[0]).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
    expect(results[1]).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
    expect(results[2]).toMatchObject({ ok: false, code: 'HANDLER_ERROR', message: 'boom', retryable: false });
  });

  test('cancellation aborts the handler and completes CANCELLED', async () => {
    let sawAbort = false;
    const { bridge, ev, exec } = await setup(async (ctx) => {
      ctx.signal.addEventListener('abort', () => {
        sawAbort = true;
      });
      await waitAbortable(30_000, ctx.signal);
      return { result: ctx.outputRef('result') };
    });
    const t = task({ text: 'x' });
    await bridge.assign(t);
    await ev.waitFor((e) => e.type === 'accepted');
    while (exec.status().running.length === 0) await Bun.sleep(5);
    bridge.cancel(t.activity_id, 'workflow cancelled');
    const c = (await ev.waitFor(completionOf(t.activity_id))) as Completion;
    expect(c.result).toMatchObject({ ok: false, code: 'CANCELLED', retryable: false });
    expect(sawAbort).toBe(true);
    expect(exec.status().running).toEqual([]);
  });

  test('a re-offer of a task still running (wcp restarted) keeps the one run and answers the new attempt', async () => {
    let runs = 0;
    let release = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    const { bridge, exec, port } = await setup(async (ctx) => {
      runs += 1;
      await released;
      return { result: ctx.outputRef('result') };
    });
    const t = task({ text: 'x' });
    await bridge.assign(t);
    while (exec.status().running.length === 0) await Bun.sleep(5);
    await bridge.stop(); // the first wcp goes away; a new one knows nothing of attempt 1
    const second = await connectBridge(port);
    await second.bridge.assign({ ...t, attempt: 2 });
    await second.ev.waitFor((e) => e.type === 'accepted');
    await Bun.sleep(200); // the re-offer reaches the executor while the first run is still going
    release();
    const c = (await second.ev.waitFor(completionOf(t.activity_id))) as Completion;
    expect({ attempt: c.attempt, ok: c.result.ok }).toEqual({ attempt: 2, ok: true });
    expect(runs).toBe(1);
    // The new wcp takes the run it did not assign (listed in the Resync) and rejects no completion.
    expect(second.ev.list.filter((e) => e.type === 'rejected' && e.activity_id !== undefined)).toEqual([]);
  });

  test('a later wcp with another worker address, or a client with none, is refused; the first keeps its stream', async () => {
    const { bridge, ev, exec, port } = await setup(async (ctx) => ({ result: ctx.outputRef('result') }));
    const second = await connectBridge(port, undefined, { workerAddress: OTHER, wait: false });
    const refused = await second.ev.waitFor(stateError('EXECUTOR_IN_USE'));
    expect(refused.type === 'state' && refused.error?.message).toContain(`serves wcp worker ${WORKER}`);
    const probe = rawClient(port, undefined);
    await untilTrue(() => probe.error !== undefined, 'the refusal of the anonymous client');
    expect(probe.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(probe.error?.details).toStartWith('EXECUTOR_IN_USE: ');
    expect(probe.error?.details).toContain('a client that gave no worker address');
    // A refused stream learns the Capabilities (a probe such as wcp doctor needs them) and nothing else.
    expect(probe.got.map((m) => m.msg)).toEqual(['hello', 'capabilities']);
    await Bun.sleep(300); // the second bridge retries meanwhile, and is refused each time
    expect(second.ev.list.some((e) => e.type === 'state' && e.state === 'ready')).toBe(false);
    // The first wcp never lost its stream and still gets work done.
    expect(bridge.status()).toMatchObject({ state: 'ready', connects: 1 });
    expect(ev.list.filter((e) => e.type === 'state' && e.state === 'backoff')).toEqual([]);
    const t = task({ text: 'x' });
    await bridge.assign(t);
    expect(((await ev.waitFor(completionOf(t.activity_id))) as Completion).result.ok).toBe(true);
    expect(exec.status().connected).toBe(true);
  });

  test('the same wcp reconnecting takes over its half-open stream, and the Resync lists what still runs', async () => {
    let release = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    const { exec, port } = await startExecutor(async (ctx) => {
      await released;
      return { result: ctx.outputRef('result') };
    });
    // The old stream: accepted, given a task, then silent (as if wcp's end vanished without closing it).
    const old = rawClient(port, WORKER.toUpperCase().replace('0X', '0x'));
    await untilTrue(() => old.got.some((m) => m.msg === 'resync'), 'the old stream accepted');
    const t = task({ text: 'x' });
    old.call.write({
      task_assignment: {
        activity_id: t.activity_id,
        activity_type: t.activity_type,
        attempt: 1,
        input_ref: t.input_ref,
        input_json: '',
        input_urls: {},
        output_urls: {},
        deadline_unix_ms: String(t.deadline_unix_ms),
        workflow_instance: '',
      },
    });
    await untilTrue(() => exec.status().running.length === 1, 'the task running');
    const again = await connectBridge(port);
    const resync = await again.ev.waitFor((e) => e.type === 'resync');
    expect(resync.type === 'resync' && resync.held_activity_ids).toEqual([t.activity_id]);
    await untilTrue(() => old.ended || old.error !== undefined, 'the old stream ended');
    release();
    const c = (await again.ev.waitFor(completionOf(t.activity_id))) as Completion;
    expect(c.result.ok).toBe(true);
  });

  test('a current stream silent for staleStreamMs no longer keeps another wcp out', async () => {
    const { port } = await startExecutor(async (ctx) => ({ result: ctx.outputRef('result') }), {
      staleStreamMs: 1500,
    });
    const old = rawClient(port, WORKER);
    await untilTrue(() => old.got.some((m) => m.msg === 'resync'), 'the old stream accepted');
    const other = await connectBridge(port, undefined, { workerAddress: OTHER, wait: false });
    await other.ev.waitFor(stateError('EXECUTOR_IN_USE'));
    await other.ev.waitFor((e) => e.type === 'state' && e.state === 'ready', 5000);
    await untilTrue(() => old.ended || old.error !== undefined, 'the old stream ended');
  });

  test('graceful stop: finishes what fits in the grace period, gives the rest back (SHUTTING_DOWN), ends cleanly', async () => {
    const { bridge, ev, exec } = await setup(async (ctx) => {
      await waitAbortable(Number(ctx.input.wait_ms), ctx.signal);
      return { result: ctx.outputRef('result') };
    });
    const quick = task({ text: 'q', wait_ms: 100 });
    const slow = task({ text: 's', wait_ms: 30_000 });
    await bridge.assign(quick);
    await bridge.assign(slow);
    while (exec.status().running.length < 2) await Bun.sleep(5);
    const stopping = exec.stop(400);
    await Bun.sleep(20);
    expect(exec.status().state).toBe('stopping');
    await stopping;
    expect(exec.status().state).toBe('stopped');
    const q = (await ev.waitFor(completionOf(quick.activity_id))) as Completion;
    const s = (await ev.waitFor(completionOf(slow.activity_id))) as Completion;
    expect(q.result.ok).toBe(true);
    expect(s.result).toMatchObject({ ok: false, code: 'SHUTTING_DOWN', retryable: true });
    // The stream ends with status OK: wcp takes it as a graceful shutdown (nothing lost is charged).
    await ev.waitFor(
      (e) => e.type === 'state' && e.state === 'backoff' && String(e.detail).includes('closed the stream cleanly'),
    );
  });

  test('storage: presigned URLs in the assignment, StorageRequest answered only for own activities', async () => {
    const presigned: Array<{ activityId: string; key: string; method: string }> = [];
    // A fake broker (the real one needs the subnet-api): records calls, returns deterministic URLs.
    const broker: StorageBrokerLike = {
      presign: async (p) => {
        presigned.push({ activityId: p.activityId, key: p.key, method: p.method });
        return {
          url: `http://store.test/${p.activityId}/${p.key}?m=${p.method}`,
          method: p.method,
          expiresAtMs: Date.now() + 60_000,
          headers: {},
        };
      },
      close: () => {},
    };
    let seen:
      | { inputUrls: Record<string, string>; outputUrls: Record<string, string>; put?: string; denied?: string }
      | undefined;
    const { bridge, ev } = await setup(
      async (ctx) => {
        seen = { inputUrls: ctx.inputUrls, outputUrls: ctx.outputUrls };
        seen.put = (await ctx.requestStorage('extra/log.txt', 'PUT')).url;
        await ctx.requestStorage('blob:someone/secret.bin', 'GET').catch((e: Error) => {
          if (seen) seen.denied = e.message;
        });
        return { result: ctx.outputRef('result') };
      },
      { broker },
    );
    const t = task({ text: 'x', src: 'blob:41/raw.mp4' });
    await bridge.assign(t);
    const c = (await ev.waitFor(completionOf(t.activity_id))) as Completion;
    expect(c.result.ok).toBe(true);
    expect(seen?.inputUrls).toEqual({ 'blob:41/raw.mp4': 'http://store.test/41/raw.mp4?m=GET' });
    expect(seen?.outputUrls).toEqual({ 'result.txt': `http://store.test/${t.activity_id}/result.txt?m=PUT` });
    expect(seen?.put).toBe(`http://store.test/${t.activity_id}/extra/log.txt?m=PUT`);
    expect(seen?.denied).toContain('refused');
    expect(presigned.some((p) => p.activityId === 'someone')).toBe(false);
    expect(ev.list.some((e) => e.type === 'rejected' && e.reason.includes('StorageRequest refused'))).toBe(true);
  });
});

describe('example video executor', () => {
  test('end to end: presigned download, real ffmpeg preprocess, uploads, output refs', async () => {
    const { generateTestVideo } = await import('../examples/video-executor/preprocess.ts');
    const blobs = new Map<string, Uint8Array>();
    // A tiny real HTTP object store standing in for the presigned-URL target.
    const http = Bun.serve({
      port: 0,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (req.method === 'PUT') {
          blobs.set(path, new Uint8Array(await req.arrayBuffer()));
          return new Response('ok');
        }
        const b = blobs.get(path);
        return b ? new Response(b) : new Response('not found', { status: 404 });
      },
    });
    cleanups.push(() => http.stop(true));
    const src = `/tmp/wep-sdk-src-${process.pid}.mp4`;
    await generateTestVideo(src, { seconds: 1, width: 320, height: 240 });
    blobs.set('/41/raw.mp4', new Uint8Array(await Bun.file(src).arrayBuffer()));

    const proc = Bun.spawn(
      [
        process.execPath,
        new URL('../examples/video-executor/main.ts', import.meta.url).pathname,
        '--port',
        '0',
        '--concurrency',
        '1',
      ],
      {
        stdout: 'pipe',
        stderr: 'inherit',
        env: { ...process.env, WCP_LOG_FORMAT: 'json', WCP_LOG_LEVEL: 'info' },
      },
    );
    cleanups.push(async () => {
      proc.kill('SIGTERM');
      await proc.exited;
    });
    const reader = proc.stdout.getReader();
    let out = '';
    let port = 0;
    while (port === 0) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`example exited: ${out}`);
      out += new TextDecoder().decode(value);
      const m = /"msg":"Video executor ready\.".*?"port":(\d+)/.exec(out);
      if (m) port = Number(m[1]);
    }
    reader.releaseLock();
    void proc.stdout.pipeTo(new WritableStream()); // keep draining its logs

    const ev = events();
    const bridge = createExecutorBridge({
      endpoint: `127.0.0.1:${port}`,
      maxInflight: 2,
      keepaliveIntervalMs: 1000,
      keepaliveTimeoutMs: 5000,
      reconnectBaseMs: 50,
      reconnectMaxMs: 500,
      maxMessageBytes: 4 * 1024 * 1024,
      workerAddress: '0x0000000000000000000000000000000000000001',
      logger: quiet(),
      emit: ev.emit,
      broker: {
        presign: async (p) => ({
          url: `http://127.0.0.1:${http.port}/${p.activityId}/${p.key}`,
          method: p.method,
          expiresAtMs: Date.now() + 60_000,
          headers: {},
        }),
        close: () => {},
      },
    });
    cleanups.push(() => bridge.stop());
    bridge.start();
    await ev.waitFor((e) => e.type === 'state' && e.state === 'ready', 10_000);
    const t = task(
      { video: 'blob:41/raw.mp4', width: 160, height: 120, fps: 12 },
      { activity_id: '4242', activity_type: 'video.preprocess' },
    );
    await bridge.assign(t);
    const c = (await ev.waitFor(completionOf('4242'), 60_000)) as Completion;
    expect(c.result).toMatchObject({
      ok: true,
      output_refs: {
        video: 'blob:4242/video.mp4',
        thumbnail: 'blob:4242/thumbnail.jpg',
        probe: 'blob:4242/probe.json',
      },
    });
    expect(c.result.ok && JSON.parse(c.result.metadata_json)).toMatchObject({ width: 160, height: 120 });
    for (const key of ['video.mp4', 'thumbnail.jpg', 'probe.json'])
      expect(blobs.get(`/4242/${key}`)?.length ?? 0).toBeGreaterThan(100);
    expect(ev.list.some((e) => e.type === 'progress' && e.activity_id === '4242' && e.fraction > 0)).toBe(true);
  }, 90_000);
});
