/**
 * Which objects an activity may touch — the confinement rules, shared by wcp's broker (checked before asking) and
 * the subnet-api (checked before signing; the dev one is the reference):
 * - PUT only in the acting activity's own namespace (`blob:<acting id>/…`);
 * - GET in its own namespace; in the namespace of an earlier step of the same workflow instance (on chain:
 *   `getActivity(ns).workflowInstance` equals the acting activity's, not 0, and its `stepIndex` is lower); or in a
 *   non-activity namespace (any name that is not a decimal activity id, e.g. `seed`) whose owner — recorded by the
 *   storage service when its first upload was signed — is the acting activity's owner: the workflow's starter
 *   (`getWorkflow(instance).starter`), or for a standalone activity the TaskQueue's owner (only it and its
 *   enqueuers can enqueue those).
 * The server also checks the holder: the acting activity is Claimed by the requesting worker and not expired.
 * wcp cannot know namespace owners; it leaves that part to the server.
 */
import { ActivityStatus, taskQueueIface, workflowEngineIface } from '../chain/abi.ts';
import { ethCall } from '../chain/reads.ts';
import type { RpcTransport } from '../chain/transport.ts';

/**
 * The words of a refusal resting on an activity the chain does not know (yet, or any more): its enqueue may be
 * mid-reorg, so such a refusal is worth asking again once the chain settled (`isUnsettledRefusal`).
 */
const MISSING_ON_CHAIN = 'does not exist on chain';

/** Whether refusal `why` may vanish with a reorg: it names an activity the chain does not know at the moment. */
export function isUnsettledRefusal(why: string): boolean {
  return why.includes(MISSING_ON_CHAIN);
}

/** Decimal activity ids name activity namespaces; every other namespace is owned by its first uploader. */
const ACTIVITY_NAMESPACE = /^(0|[1-9][0-9]{0,77})$/;

/** True when `ns` is an activity's namespace (a decimal activity id). */
export function isActivityNamespace(ns: string): boolean {
  return ACTIVITY_NAMESPACE.test(ns);
}

/** What the rules need of one activity, as the chain reports it. */
export interface ActivityInfo {
  id: string;
  exists: boolean;
  /** Decimal; '0' for a standalone activity. */
  workflowInstance: string;
  stepIndex: number;
  /** 0 None, 1 Pending, 2 Claimed, 3 Completed, 4 Failed. */
  status: number;
  /** Lower-cased. */
  worker: string;
  isExpired: boolean;
}

/** The chain reads of the rules; a seam (tests and both sides build it over one RpcTransport). */
export interface EntitlementChain {
  activity(id: string): Promise<ActivityInfo>;
  /** The owner of an activity: its workflow's starter, or the TaskQueue's owner for a standalone one (lower-case). */
  ownerOf(a: ActivityInfo): Promise<string>;
}

/** Chain reads at the latest block; the immutable facts (workflow starter, queue owner) are cached. */
export function createEntitlementChain(
  rpc: RpcTransport,
  addrs: { taskQueue: string; workflowEngine: string },
): EntitlementChain {
  const starters = new Map<string, string>();
  let queueOwner: string | undefined;
  return {
    async activity(id) {
      const ret = await ethCall(rpc, addrs.taskQueue, taskQueueIface.encodeFunctionData('getActivity', [id]), 'latest');
      const [t] = taskQueueIface.decodeFunctionResult('getActivity', ret) as unknown as [Record<string, unknown>];
      const status = Number(t.status);
      return {
        id,
        exists: status !== ActivityStatus.None,
        workflowInstance: String(t.workflowInstance),
        stepIndex: Number(t.stepIndex),
        status,
        worker: String(t.worker).toLowerCase(),
        isExpired: Boolean(t.isExpired),
      };
    },
    async ownerOf(a) {
      if (a.workflowInstance === '0') {
        if (queueOwner === undefined) {
          const ret = await ethCall(rpc, addrs.taskQueue, taskQueueIface.encodeFunctionData('owner', []), 'latest');
          queueOwner = String(taskQueueIface.decodeFunctionResult('owner', ret)[0]).toLowerCase();
        }
        return queueOwner;
      }
      const cached = starters.get(a.workflowInstance);
      if (cached !== undefined) return cached;
      const data = workflowEngineIface.encodeFunctionData('getWorkflow', [a.workflowInstance]);
      const ret = await ethCall(rpc, addrs.workflowEngine, data, 'latest');
      const [w] = workflowEngineIface.decodeFunctionResult('getWorkflow', ret) as unknown as [Record<string, unknown>];
      const starter = String(w.starter).toLowerCase();
      if (starters.size > 10_000) starters.clear();
      starters.set(a.workflowInstance, starter);
      return starter;
    },
  };
}

/** One access to decide. */
export interface AccessRequest {
  /** The activity asked on behalf of (held by the requester). */
  acting: string;
  /** The namespace the object is in. */
  namespace: string;
  method: 'GET' | 'PUT';
}

/** How to decide: the server adds the holder and the namespace owners; wcp leaves both out. */
export interface DecideOptions {
  /** When set, the acting activity must be Claimed by this address (lower-case) and not expired. */
  holder?: string;
  /** When set, non-activity namespaces are checked against their recorded owner (undefined: no owner). */
  namespaceOwner?: (ns: string) => string | undefined;
}

/** `null` when allowed, else why not (one line, safe to send back). Chain read failures reject. */
export async function decideAccess(
  chain: EntitlementChain,
  r: AccessRequest,
  o: DecideOptions = {},
): Promise<string | null> {
  if (r.method === 'PUT' && r.namespace !== r.acting) {
    return `PUT only in the acting activity's own namespace (${r.acting.slice(0, 80)}), not in ${r.namespace.slice(0, 80)}`;
  }
  // Its own namespace needs no chain read unless the holder is checked.
  if (r.namespace === r.acting && o.holder === undefined) return null;
  if (!isActivityNamespace(r.acting)) return `acting activity "${r.acting.slice(0, 80)}" is not an activity id`;
  const acting = await chain.activity(r.acting);
  if (!acting.exists) return `activity ${r.acting} ${MISSING_ON_CHAIN}`;
  if (o.holder !== undefined) {
    if (acting.worker !== o.holder || acting.status !== ActivityStatus.Claimed) {
      return `activity ${r.acting} is not claimed by ${o.holder} (status ${acting.status}, worker ${acting.worker})`;
    }
    if (acting.isExpired) return `activity ${r.acting} has expired`;
  }
  if (r.namespace === r.acting) return null;
  if (isActivityNamespace(r.namespace)) {
    if (acting.workflowInstance === '0')
      return `activity ${r.acting} is not in a workflow: it reads only its own namespace`;
    const source = await chain.activity(r.namespace);
    if (!source.exists)
      return `activity ${r.namespace} ${MISSING_ON_CHAIN}: not an earlier step of workflow ${acting.workflowInstance}`;
    if (source.workflowInstance !== acting.workflowInstance || source.stepIndex >= acting.stepIndex) {
      return `activity ${r.namespace} is not an earlier step of workflow ${acting.workflowInstance}`;
    }
    return null;
  }
  if (o.namespaceOwner === undefined) return null;
  const owner = o.namespaceOwner(r.namespace);
  if (owner === undefined) return `namespace ${r.namespace.slice(0, 80)} has no owner`;
  const actingOwner = await chain.ownerOf(acting);
  return owner === actingOwner
    ? null
    : `namespace ${r.namespace.slice(0, 80)} is not readable by the owner of activity ${r.acting}`;
}
