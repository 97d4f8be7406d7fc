/**
 * The narrow interface the reconcile layer drives hosts through, and how a host is addressed.
 * Implementations: ssh (createSshDriver) and local (createLocalDriver).
 */
import type { HostRequest, HostResult } from "./contract.ts";

/** One Windows host to run the host script on. */
export interface HostTarget {
  /** Computer name (sAMAccountName without '$'); must equal the request's `host`. */
  readonly host: string;
  /** Where to connect (the computer's dNSHostName, or an IP). Unused by the local driver. */
  readonly address: string;
  /** SSH port; 22 when absent. */
  readonly port?: number;
  /** Login name; the driver's default when absent. */
  readonly username?: string;
  /**
   * The remote command the bootstrap is appended to (as `-EncodedCommand <base64>`); the
   * driver's default when absent. Tests point it at a launcher that loads the Windows doubles.
   */
  readonly shell?: string;
}

/**
 * Runs one request on one host and returns the script's result.
 * Guarantees: resolves only with a result that matches the contract and the request (same
 * host, mode and bindings); every failure is thrown as a HostError with a `failure` type.
 */
export interface HostDriver {
  run(target: HostTarget, request: HostRequest, signal?: AbortSignal): Promise<HostResult>;
}
