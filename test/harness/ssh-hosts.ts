/**
 * Test hosts behind one real sshd: each host is a state file for the Windows doubles, reached
 * over ssh with the shell a Windows host has (launcherShell). Shared by the host-script tests.
 */
import { join } from "node:path";
import type { BindingRequest, HostDriver, HostRequest, HostTarget } from "../../controller/hosts/index.ts";
import { createSshDriver, HOST_CONTRACT_VERSION, HostError } from "../../controller/hosts/index.ts";
import type { DoubleHostState } from "./pwsh-doubles/state.ts";
import { launcherShell, sampleHost, writeHostState } from "./pwsh-doubles/state.ts";
import { startSshd } from "./sshd.ts";
import type { Sshd } from "./sshd.ts";

/** An sshd, an ssh driver for it, and a way to add test hosts. */
export interface SshHostLab {
  readonly sshd: Sshd;
  readonly driver: HostDriver;
  /** A fresh host named PREFIX<n> (sampleHost, MSA-service1 retrievable), edited before it is written. */
  newHost(edit?: (s: DoubleHostState) => void): Promise<{ target: HostTarget; statePath: string }>;
  stop(): Promise<void>;
}

/** Starts the sshd and the driver; hosts are named `${prefix}1`, `${prefix}2`, ... */
export async function startSshHostLab(prefix: string, commandTimeoutMs = 120_000): Promise<SshHostLab> {
  const sshd = await startSshd();
  const driver = await createSshDriver({
    privateKeyPath: sshd.clientKeyPath,
    knownHostsPath: sshd.knownHostsPath,
    username: sshd.username,
    commandTimeoutMs,
  });
  let count = 0;
  return {
    sshd,
    driver,
    async newHost(edit = () => undefined) {
      const computer = `${prefix}${++count}`;
      const state = sampleHost(computer);
      state.retrievable = { "MSA-service1": true };
      edit(state);
      const statePath = join(sshd.dir, `${computer}.json`);
      await writeHostState(statePath, state);
      return {
        target: { host: computer, address: sshd.address, port: sshd.port, shell: launcherShell(statePath) },
        statePath,
      };
    },
    stop: () => sshd.stop(),
  };
}

/** A request for one test host in domain COMPANY. */
export function hostRequest(target: HostTarget, mode: HostRequest["mode"], bindings: BindingRequest[]): HostRequest {
  return { version: HOST_CONTRACT_VERSION, mode, host: target.host, domain: "COMPANY", bindings };
}

/** The HostError a promise rejects with (anything else fails the test). */
export async function rejection(p: Promise<unknown>): Promise<HostError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof HostError) return e;
    throw e;
  }
  throw new Error("expected a HostError");
}
