/** The executor SDK: serve activity handlers to wcp over TaskStream. */
export {
  createExecutor,
  type Executor,
  type ExecutorOptions,
  type ExecutorState,
  type ExecutorStatus,
} from './executor.ts';
export type { AbortCause, Handler, HandlerContext, StorageGrant } from './run-task.ts';
export {
  type ActivitySpec,
  type FieldSpec,
  type OutputSpec,
  loadActivitySpecs,
  outputDecls,
  parseActivitySpec,
} from './spec.ts';
export { type ExecutorTlsFiles, readExecutorTls, type ServerTlsMaterial } from './tls.ts';
