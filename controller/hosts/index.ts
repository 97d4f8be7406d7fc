/**
 * Host drivers: the PowerShell host script, its JSON contract, and the ssh and local transports.
 * The reconcile layer builds HostRequests (bindingRequest fills the CRD defaults), runs them
 * with runFleet through a HostDriver, and reads HostResults; failures are typed HostErrors.
 */
export * from "./contract.ts";
export type { HostDriver, HostTarget } from "./driver.ts";
export { HostError, toHostError } from "./errors.ts";
export type { HostErrorReason, HostErrorOutcome } from "./errors.ts";
export { runFleet } from "./fleet.ts";
export type { FleetJob, FleetOptions, FleetOutcome } from "./fleet.ts";
export { createLocalDriver, defaultLocalCommand } from "./local.ts";
export type { LocalDriverOptions } from "./local.ts";
export { createSshDriver } from "./ssh.ts";
export type { SshDriverOptions } from "./ssh.ts";
export { checkHostKey, fingerprint, knownHostName, parseKnownHosts } from "./known-hosts.ts";
export { bootstrapCommand, DEFAULT_WINDOWS_SHELL, ENCODED_BOOTSTRAP, hostScript } from "./script.ts";
