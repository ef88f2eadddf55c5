/**
 * The TaskStream protocol (proto/execution/v1/execution.proto) as both ends see it: the version constant, the
 * service loader, and the decoded wire shapes. The executor is the gRPC server; wcp dials it. The request stream
 * carries `WcpMessage` (wcp → executor), the response stream `ExecutorMessage` (executor → wcp).
 */
import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProtoText } from '../internal/proto.ts';
import executionProtoText from '../../proto/execution/v1/execution.proto' with { type: 'text' };

/** Major protocol version of this build. Peers are compatible only when their majors are equal. */
export const PROTOCOL_VERSION = 1;

/** Fully-qualified service name. */
export const EXECUTOR_SERVICE_NAME = 'wcp.execution.v1.Executor';

/**
 * The parsed service, once per thread: parsing the proto text costs tens of milliseconds, and the constructor is
 * immutable, so every client and server of the thread shares it (a cache, not state a test could observe).
 */
let executorService: ServiceClientConstructor | undefined;

/** Loads execution.proto from its text (parsed once per thread); `.service` is what a server passes to `addService`. */
export function loadExecutorService(): ServiceClientConstructor {
  if (executorService === undefined) {
    const root = loadProtoText(executionProtoText as string);
    const pkg = ((root.wcp as GrpcObject).execution as GrpcObject).v1 as GrpcObject;
    executorService = pkg.Executor as ServiceClientConstructor;
  }
  return executorService;
}

/** uint64 fields decode as decimal strings (`longs: String`); either form may be written. */
export type U64 = string | number;

/** One declared output as Capabilities carries it. */
export interface OutputDeclWire {
  name: string;
  key: string;
  content_type: string;
  /** A success may leave it out (default false: required). */
  optional?: boolean;
}

/** Messages the executor sends, as written (encoding side). Decoded ones are validated by `parseExecutorMessage`. */
export type ExecutorMessageWire =
  | { hello: { executor_id: string; executor_version: string; protocol_version: number } }
  | {
      capabilities: {
        activity_types: string[];
        max_concurrency: number;
        outputs?: Array<{ activity_type: string; outputs: OutputDeclWire[] }>;
      };
    }
  | { capacity_update: { credits: number; assignments_received: U64 } }
  | { progress: { activity_id: string; fraction: number; message: string } }
  | {
      completion: {
        activity_id: string;
        attempt: number;
        success?: { output_refs: Record<string, string>; metadata_json: string };
        failure?: { code: string; message: string; retryable: boolean };
      };
    }
  | { storage_request: { request_id: string; activity_id: string; key: string; method: string } }
  | { pong: { nonce: U64 } }
  | { resync: { running_activity_ids: string[] } };

/** One task as wcp assigns it. */
export interface TaskAssignmentWire {
  activity_id: string;
  activity_type: string;
  attempt: number;
  input_ref: string;
  input_json: string;
  input_urls: Record<string, string>;
  output_urls: Record<string, string>;
  deadline_unix_ms: U64;
  workflow_instance: string;
}

/** Messages wcp sends. Decoded (executor side) they carry `msg` naming the set member. */
export type WcpMessageWire =
  | {
      hello_ack: {
        protocol_version: number;
        wcp_version: string;
        accepted: boolean;
        reason: string;
        /** This wcp answers every Completion with a CompletionAck. */
        acks_completions?: boolean;
        /** The worker address this wcp works for: its identity for the executor's one-stream rule. */
        worker_address?: string;
      };
    }
  | { task_assignment: TaskAssignmentWire }
  | { cancel: { activity_id: string; reason: string } }
  | {
      storage_grant: {
        request_id: string;
        url: string;
        method: string;
        expires_at_unix_ms: U64;
        error: string;
        headers: Record<string, string>;
      };
    }
  | { ping: { nonce: U64 } }
  | { completion_ack: CompletionAckWire };

/** wcp's verdict on one Completion; `code` is empty when accepted (codes: `COMPLETION_ACK_CODES`). */
export interface CompletionAckWire {
  activity_id: string;
  attempt: number;
  accepted: boolean;
  code: string;
  reason: string;
}

/** The rejection codes of a CompletionAck that this build sends (a peer may see others). */
export const COMPLETION_ACK_CODES = {
  /** An output ref outside `blob:<activity_id>/`, a required declared output missing, or an object never uploaded. */
  outputInvalid: 'OUTPUT_INVALID',
  /** The Completion failed validation (e.g. metadata_json not a JSON object) or came before the Resync. */
  badMessage: 'BAD_MESSAGE',
  /** Not the attempt wcp assigned. */
  wrongAttempt: 'WRONG_ATTEMPT',
  /** wcp does not hold the activity (never assigned, lost, expired or cancelled). */
  notHeld: 'NOT_HELD',
  /** The activity already has an accepted outcome. */
  duplicate: 'DUPLICATE',
} as const;
