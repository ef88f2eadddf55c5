/**
 * Storage references as they appear in activity inputs and outputs: `blob:<namespace>/<key>`, where the namespace
 * is an activity id (outputs of activity N live at `blob:N/<key>`) and the key is a '/'-separated relative path.
 * An `input_ref` is either `json:{...}` (inline parameters, in which any string starting with `blob:` is a
 * reference) or a single `blob:` reference.
 */

/** Activity ids: one path-safe token (decimal uint256, 0x-hex bytes32, a UUID …), at most 128 chars. */
export const ACTIVITY_ID_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const KEY_SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
/** Longest object key, in characters. */
export const MAX_KEY_LENGTH = 512;

/** Whether `v` is a valid activity id (also a valid blob namespace). */
export function isActivityId(v: unknown): v is string {
  return typeof v === 'string' && ACTIVITY_ID_RE.test(v) && v !== '.' && v !== '..';
}

/** Why `key` is not a valid object key, or null. */
export function keyProblem(key: string): string | null {
  if (key.length === 0) return 'key is empty';
  if (key.length > MAX_KEY_LENGTH) return `key is longer than ${MAX_KEY_LENGTH} characters`;
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return 'key has an empty, "." or ".." segment';
    if (!KEY_SEGMENT_RE.test(seg)) return 'key has characters outside [A-Za-z0-9._-/]';
  }
  return null;
}

/** A parsed `blob:` reference. */
export interface BlobRef {
  /** The activity id that owns the object. */
  namespace: string;
  key: string;
}

/** Parses `blob:<namespace>/<key>`; null when malformed. */
export function parseBlobRef(ref: string): BlobRef | null {
  if (!ref.startsWith('blob:')) return null;
  const rest = ref.slice(5);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const namespace = rest.slice(0, slash);
  const key = rest.slice(slash + 1);
  if (!isActivityId(namespace) || keyProblem(key) !== null) return null;
  return { namespace, key };
}

/** `blob:<namespace>/<key>`; the parts are not checked (see `parseBlobRef`). */
export function formatBlobRef(namespace: string, key: string): string {
  return `blob:${namespace}/${key}`;
}

/** A parsed `input_ref`, with every blob reference it names. */
export type ParsedInputRef =
  | { kind: 'json'; json: string; value: unknown; blobRefs: string[] }
  | { kind: 'blob'; ref: string; blobRefs: string[] };

/** Parses an on-chain `input_ref`; throws an Error naming the problem. */
export function parseInputRef(inputRef: string): ParsedInputRef {
  if (inputRef.startsWith('json:')) {
    const json = inputRef.slice(5);
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (e) {
      throw new Error(`input_ref json is not valid JSON: ${(e as Error).message}`);
    }
    const refs = new Set<string>();
    collectBlobRefs(value, refs, 0);
    for (const r of refs)
      if (parseBlobRef(r) === null) throw new Error(`malformed blob reference in input: ${r.slice(0, 200)}`);
    return { kind: 'json', json, value, blobRefs: [...refs] };
  }
  if (inputRef.startsWith('blob:')) {
    if (parseBlobRef(inputRef) === null) throw new Error(`malformed blob input_ref: ${inputRef.slice(0, 200)}`);
    return { kind: 'blob', ref: inputRef, blobRefs: [inputRef] };
  }
  throw new Error('input_ref must start with "json:" or "blob:"');
}

/** Every string value starting with `blob:` anywhere inside `value` (depth-limited). */
function collectBlobRefs(value: unknown, out: Set<string>, depth = 0): void {
  if (depth > 64) throw new Error('input JSON is nested deeper than 64 levels');
  if (typeof value === 'string') {
    if (value.startsWith('blob:')) out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectBlobRefs(v, out, depth + 1);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) collectBlobRefs(v, out, depth + 1);
  }
}
