/**
 * HTTP side of the dev subnet-api: serves `/blobs/{activity_id}/{key}?method=…&exp=…&sig=…`.
 *
 * Order of checks, each answered with a one-line text body: malformed path or traversal → 400; HTTP method other
 * than GET/HEAD/PUT → 405; missing or bad signature → 403; signature valid but for another method → 405;
 * expired → 403 ("URL expired …"); GET of a missing object → 404; PUT over the size cap → 413.
 * The raw request target is parsed by hand: WHATWG URL parsing would silently resolve `..` and `%2e%2e`
 * segments, turning a traversal attempt into a different, valid-looking path.
 */
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { Logger } from '../../../src/internal/logger.ts';
import { activityIdProblem, objectKeyProblem } from '../../../src/storage/broker.ts';
import type { BlobStore } from './blob-store.ts';
import { type BlobMethod, verifyBlobSig } from './signing.ts';

export interface BlobHttpOptions {
  store: BlobStore;
  secret: string;
  /** Largest PUT body in bytes. */
  maxPutBytes: number;
  now: () => number;
  logger: Logger;
}

const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

class TooLarge extends Error {}

type Parsed =
  | { ok: true; activityId: string; key: string; query: URLSearchParams }
  | { ok: false; status: number; message: string };

/** Parses the raw request target into (activity id, key, query) without normalizing dot segments. */
function parseTarget(rawTarget: string): Parsed {
  const q = rawTarget.indexOf('?');
  const path = q >= 0 ? rawTarget.slice(0, q) : rawTarget;
  const query = new URLSearchParams(q >= 0 ? rawTarget.slice(q + 1) : '');
  const rawSegs = path.split('/');
  if (rawSegs[0] !== '' || rawSegs[1] !== 'blobs')
    return { ok: false, status: 404, message: 'Not found: only /blobs/{activity_id}/{key} is served.' };
  const segs: string[] = [];
  for (const raw of rawSegs.slice(2)) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { ok: false, status: 400, message: 'Bad request: path has invalid percent-encoding.' };
    }
    // An encoded '/' or '\' would let one segment smuggle several path components.
    if (seg.includes('/') || seg.includes('\\') || seg.includes('\0')) {
      return { ok: false, status: 400, message: 'Bad request: path segment contains an encoded separator.' };
    }
    segs.push(seg);
  }
  const [activityId, ...keySegs] = segs;
  if (activityId === undefined || keySegs.length === 0) {
    return { ok: false, status: 400, message: 'Bad request: path must be /blobs/{activity_id}/{key}.' };
  }
  const key = keySegs.join('/');
  const problem = activityIdProblem(activityId) ?? objectKeyProblem(key);
  if (problem) return { ok: false, status: 400, message: `Bad request: ${problem}.` };
  return { ok: true, activityId, key, query };
}

function reply(res: ServerResponse, statusCode: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(statusCode, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

/** Returns the request handler of the blob store's HTTP server. */
export function createBlobHandler(opts: BlobHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const log = opts.logger;
  return (req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error('Blob request failed.', { error: e instanceof Error ? e.message : String(e) });
      reply(res, 500, 'Internal error.');
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = parseTarget(req.url ?? '/');
    if (!parsed.ok) return drainAndReply(req, res, parsed.status, parsed.message);
    const { activityId, key, query } = parsed;
    const httpMethod = req.method ?? 'GET';
    if (httpMethod !== 'GET' && httpMethod !== 'HEAD' && httpMethod !== 'PUT') {
      return drainAndReply(req, res, 405, `Method ${httpMethod} not allowed: use GET, HEAD or PUT.`, {
        allow: 'GET, HEAD, PUT',
      });
    }
    const signedMethod = query.get('method');
    const expText = query.get('exp');
    const sig = query.get('sig');
    if (!signedMethod || !expText || !sig) {
      return drainAndReply(req, res, 403, 'Forbidden: URL is not signed (needs method, exp and sig).');
    }
    const expMs = /^\d{1,16}$/.test(expText) ? Number(expText) : Number.NaN;
    if ((signedMethod !== 'GET' && signedMethod !== 'PUT') || !Number.isSafeInteger(expMs)) {
      return drainAndReply(req, res, 403, 'Forbidden: bad signature.');
    }
    if (!verifyBlobSig(opts.secret, signedMethod as BlobMethod, activityId, key, expMs, sig)) {
      return drainAndReply(req, res, 403, 'Forbidden: bad signature.');
    }
    const effective = httpMethod === 'HEAD' ? 'GET' : httpMethod;
    if (effective !== signedMethod) {
      return drainAndReply(req, res, 405, `Method ${httpMethod} not allowed: this URL is signed for ${signedMethod}.`, {
        allow: signedMethod === 'GET' ? 'GET, HEAD' : 'PUT',
      });
    }
    const nowMs = opts.now();
    if (nowMs >= expMs) {
      return drainAndReply(
        req,
        res,
        403,
        `Forbidden: URL expired at ${new Date(expMs).toISOString()} (now ${new Date(nowMs).toISOString()}); presign a new one.`,
      );
    }
    const path = opts.store.blobPath(activityId, key);
    if (effective === 'GET') return serveGet(req, res, path, httpMethod === 'HEAD');
    return servePut(req, res, activityId, key);
  }

  async function serveGet(_req: IncomingMessage, res: ServerResponse, path: string, headOnly: boolean): Promise<void> {
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) return reply(res, 404, 'Not found.');
      size = st.size;
    } catch {
      return reply(res, 404, 'Not found.');
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(size),
    });
    if (headOnly) {
      res.end();
      return;
    }
    await pipeline(createReadStream(path), res).catch((e: unknown) => {
      log.warn('Blob download interrupted.', { error: e instanceof Error ? e.message : String(e) });
      res.destroy();
    });
  }

  async function servePut(req: IncomingMessage, res: ServerResponse, activityId: string, key: string): Promise<void> {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > opts.maxPutBytes) {
      return drainAndReply(req, res, 413, `Payload too large: the cap is ${opts.maxPutBytes} bytes.`, {
        connection: 'close',
      });
    }
    const tmp = opts.store.tempPath();
    let received = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        if (received > opts.maxPutBytes) cb(new TooLarge());
        else cb(null, chunk);
      },
    });
    try {
      await pipeline(req, counter, createWriteStream(tmp, { flags: 'wx' }));
      await opts.store.commit(tmp, activityId, key);
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof TooLarge) {
        reply(res, 413, `Payload too large: the cap is ${opts.maxPutBytes} bytes.`, { connection: 'close' });
        req.destroy();
        return;
      }
      if (req.destroyed || req.aborted) {
        log.warn('Blob upload aborted by the client; nothing stored.', { activity_id: activityId, key });
        return;
      }
      throw e;
    }
    log.debug('Stored a blob.', { activity_id: activityId, key, bytes: received });
    reply(res, 201, `Stored ${received} bytes.`);
  }

  /** Answers without reading a body we will not use; the connection closes if a body is pending. */
  function drainAndReply(
    req: IncomingMessage,
    res: ServerResponse,
    statusCode: number,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0';
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (statusCode >= 400)
      log.debug('Refused a blob request.', { status: statusCode, method: req.method, reason: message });
    reply(res, statusCode, message, hasBody || chunked ? { connection: 'close', ...headers } : headers);
    if (hasBody || chunked) req.resume();
  }
}
