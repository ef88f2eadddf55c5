/**
 * TaskStream, the protocol between wcp and an executor (proto/execution/v1/execution.proto), as both ends use it:
 * the daemon's bridge (src/executor/) and the executor SDK (src/wep/) import it, and it imports nothing of either —
 * only src/internal/ and the .proto text (test/layering.test.ts holds that).
 *
 * - protocol.ts — version, service loader, wire shapes of both directions;
 * - validate.ts — `parseExecutorMessage`: untrusted executor messages to normalized values, never throwing;
 * - refs.ts — the `blob:<activity_id>/<key>` grammar and `input_ref` parsing;
 * - types.ts — `CompletionResult`, the one shape of a task's outcome.
 */
export {
  COMPLETION_ACK_CODES,
  type CompletionAckWire,
  EXECUTOR_SERVICE_NAME,
  type ExecutorMessageWire,
  type OutputDeclWire,
  PROTOCOL_VERSION,
  type TaskAssignmentWire,
  type U64,
  type WcpMessageWire,
  loadExecutorService,
} from './protocol.ts';
export {
  ACTIVITY_ID_RE,
  type BlobRef,
  MAX_KEY_LENGTH,
  type ParsedInputRef,
  formatBlobRef,
  isActivityId,
  keyProblem,
  parseBlobRef,
  parseInputRef,
} from './refs.ts';
export type { CompletionResult } from './types.ts';
export {
  ACTIVITY_TYPE_RE,
  type ExecutorMessage,
  LIMITS,
  type OutputDecl,
  type ParseResult,
  parseExecutorMessage,
} from './validate.ts';
