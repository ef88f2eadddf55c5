/**
 * The bridge's side of storage: presigned URLs through the storage broker seam — the input (GET) and declared
 * output (PUT) URLs of an assignment, and the executor's StorageRequests. An executor may PUT only in its
 * activity's own namespace and GET only there or the activity's input references.
 */
import { WcpError, errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { keyProblem, parseBlobRef } from '../taskstream/refs.ts';
import type { ExecutorMessage, OutputDecl } from '../taskstream/validate.ts';
import type { Conn, Connection } from './connection.ts';
import type { BridgeEvents } from './events.ts';
import type { TaskSpec } from './messages.ts';
import type { TaskTable } from './task-table.ts';

/** What the bridge needs from the storage broker (src/storage/broker.ts satisfies it). */
export interface StorageBrokerLike {
  presign(p: {
    activityId: string;
    /** The activity held and asked for; the broker and the subnet-api check its entitlement to `activityId`. */
    actingActivityId: string;
    key: string;
    method: 'GET' | 'PUT';
    contentType?: string;
    ttlSeconds?: number;
    /** A health probe (its expected refusal is not worth a warning). */
    probe?: boolean;
  }): Promise<{ url: string; method: string; expiresAtMs: number; headers: Record<string, string> }>;
  close(): void;
}

/** StorageRequests one connection may have presigning at once; more are refused. */
const MAX_STORAGE_REQUESTS = 64;

/** A presigned URL's lifetime for `task`: its time to deadline, within [60 s, maxTtlSeconds]. */
export function presignTtlSeconds(task: TaskSpec, maxTtlSeconds: number, now = Date.now()): number {
  const remaining = Math.ceil((task.deadline_unix_ms - now) / 1000);
  return Math.max(60, Math.min(remaining, maxTtlSeconds));
}

/** The outputs an activity type declares: the configured specs win over the executor's Capabilities. */
export function declaredOutputs(
  outputSpecs: Record<string, OutputDecl[]> | undefined,
  caps: { outputs: Record<string, OutputDecl[]> } | undefined,
  activityType: string,
): OutputDecl[] {
  return outputSpecs?.[activityType] ?? caps?.outputs[activityType] ?? [];
}

/** An assignment's presigned URLs: input blob reference → GET URL, declared output key → PUT URL. */
export interface AssignmentUrls {
  inputUrls: Record<string, string>;
  outputUrls: Record<string, string>;
}

/** Presigns every input reference and declared output of `task`; rejects on the first failure. */
export async function presignAssignmentUrls(
  broker: StorageBrokerLike,
  task: TaskSpec,
  inputRefs: readonly string[],
  outputs: readonly OutputDecl[],
  ttlSeconds: number,
): Promise<AssignmentUrls> {
  const inputUrls: Record<string, string> = {};
  const outputUrls: Record<string, string> = {};
  await Promise.all([
    ...inputRefs.map(async (ref) => {
      const b = parseBlobRef(ref);
      if (b === null) throw new WcpError('STORAGE_DENIED', `malformed blob reference ${ref}`);
      const g = { activityId: b.namespace, actingActivityId: task.activity_id, key: b.key, method: 'GET' as const };
      inputUrls[ref] = (await broker.presign({ ...g, ttlSeconds })).url;
    }),
    ...outputs.map(async (d) => {
      const g = await broker.presign({
        activityId: task.activity_id,
        actingActivityId: task.activity_id,
        key: d.key,
        method: 'PUT',
        ...(d.contentType ? { contentType: d.contentType } : {}),
        ttlSeconds,
      });
      outputUrls[d.key] = g.url;
    }),
  ]);
  return { inputUrls, outputUrls };
}

export interface StorageRequestsOptions {
  /** Without a broker every StorageRequest is refused. */
  broker: StorageBrokerLike | undefined;
  presignMaxTtlSeconds: number;
  tasks: TaskTable;
  connection: Pick<Connection, 'write'>;
  events: BridgeEvents;
  logger: Logger;
  /** The declared outputs of an activity type on the current connection. */
  outputsOf(activityType: string): OutputDecl[];
}

/** Answers one StorageRequest with a StorageGrant (a URL, or an error naming why not); never throws. */
export function createStorageRequests(
  opts: StorageRequestsOptions,
): (c: Conn, m: Extract<ExecutorMessage, { kind: 'storage_request' }>) => void {
  const { tasks, connection, events } = opts;

  return function onStorageRequest(c, m) {
    const deny = (why: string): void => {
      events.reject(`StorageRequest refused: ${why}`, m.activity_id);
      connection.write(c, {
        storage_grant: {
          request_id: m.request_id,
          url: '',
          method: m.method,
          expires_at_unix_ms: 0,
          error: why,
          headers: {},
        },
      });
    };
    const t = tasks.get(m.activity_id);
    if (t?.stage !== 'sent') return deny('activity not assigned to this executor');
    const broker = opts.broker;
    if (broker === undefined) return deny('no storage broker configured');
    if (c.storageRequests >= MAX_STORAGE_REQUESTS) return deny('too many storage requests in progress');
    let target: { namespace: string; key: string } | null;
    if (m.key.startsWith('blob:')) {
      target = parseBlobRef(m.key);
      if (target === null) return deny('malformed blob reference');
      const own = target.namespace === m.activity_id;
      if (m.method === 'PUT' && !own) return deny("PUT is only allowed in the activity's own namespace");
      if (m.method === 'GET' && !own && !t.inputRefs.has(m.key))
        return deny("GET is only allowed for the activity's inputs and outputs");
    } else {
      const problem = keyProblem(m.key);
      if (problem !== null) return deny(`invalid key: ${problem}`);
      target = { namespace: m.activity_id, key: m.key };
    }
    const key = target.key;
    const decl = opts.outputsOf(t.task.activity_type).find((d) => d.key === key);
    c.storageRequests += 1;
    broker
      .presign({
        activityId: target.namespace,
        actingActivityId: m.activity_id,
        key,
        method: m.method,
        ...(m.method === 'PUT' && decl?.contentType ? { contentType: decl.contentType } : {}),
        ttlSeconds: presignTtlSeconds(t.task, opts.presignMaxTtlSeconds),
      })
      .then(
        (g) => {
          c.storageRequests -= 1;
          connection.write(c, {
            storage_grant: {
              request_id: m.request_id,
              url: g.url,
              method: g.method,
              expires_at_unix_ms: g.expiresAtMs,
              error: '',
              headers: g.headers,
            },
          });
        },
        (e: unknown) => {
          c.storageRequests -= 1;
          opts.logger.warn('Presigning for a StorageRequest failed.', {
            activity_id: m.activity_id,
            error: errorText(e),
          });
          connection.write(c, {
            storage_grant: {
              request_id: m.request_id,
              url: '',
              method: m.method,
              expires_at_unix_ms: 0,
              error: `storage unavailable: ${errorText(e)}`.slice(0, 300),
              headers: {},
            },
          });
        },
      );
  };
}
