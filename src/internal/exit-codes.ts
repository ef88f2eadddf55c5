/** Process exit codes of the `wcp` binary. Stable: operators script against them. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  ConfigInvalid: 3,
  StoreFailed: 4,
  ChainUnreachable: 5,
  ChainIdMismatch: 6,
  /** The wallet is not a registered, active worker on SubnetControlPlane. */
  WorkerNotActive: 10,
  /** Another wcp (named by its pid) holds the store. */
  StoreLocked: 11,
  /** The operator endpoints (`metrics.listen`) cannot listen: the port is taken or not an address of this host. */
  ListenFailed: 12,
  /** A second signal forced the exit before draining finished. */
  Forced: 130,
} as const;
