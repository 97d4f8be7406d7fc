// The host side of a HostBinding whose account is a standalone MSA: the request says so
// (accountKind smsa) once AD links the sMSA to the binding's computer; before that, or while AD
// links it to another computer, the host is not touched and the binding waits with the reason.
// The host is a recording fake; the script is tested against pwsh in test/hosts-smsa.test.ts.
import { describe, expect, it } from "vitest";
import type { HostRequest } from "../hosts/index.ts";
import {
  BASE,
  computer,
  desiredOf,
  emptyDirectory,
  hostBinding,
  observedGmsa,
  recordingHost,
  smsa,
} from "../../test/support/reconcile.ts";
import { hostAttempts } from "./host-outcome.ts";
import { hostMemory, reconcileHosts } from "./hosts.ts";
import { summarize } from "./status.ts";

const now = new Date("2026-11-30T12:00:00Z");
const DN = `CN=MSA-SQL1,CN=Managed Service Accounts,${BASE}`;

const binding = hostBinding("sql1-mssql", {
  host: "SQL1",
  account: "sql1-svc",
  services: [{ name: "MSSQLSERVER", restart: "OnChange" }],
});

async function run(links: { computer: string; accounts: string[] }[], hostComputers: string[]) {
  const requests: HostRequest[] = [];
  const computers = links.map((l) => ({ ...computer(l.computer), hostServiceAccounts: l.accounts }));
  const observed = emptyDirectory(now, {
    computers,
    gmsas: [observedGmsa("MSA-SQL1", [], { standalone: true, hostComputers, dnsHostName: undefined })],
  });
  const { bindings } = await reconcileHosts(
    desiredOf(smsa(), binding),
    observed,
    undefined,
    "apply",
    "enforce",
    {
      driver: recordingHost(requests, (b) => ({
        retrievable: true,
        install: "Installed",
        items: [{ item: "install", name: b.account, observed: false, desired: true, action: "changed" }],
      })),
      domain: "COMPANY",
      concurrency: 1,
      target: (host) => ({ host, address: host }),
    },
    hostMemory(),
    { now },
  );
  return { requests, outcome: bindings[0] };
}

describe("a HostBinding of a standalone MSA", () => {
  it("linked to its computer: the host is asked to install it (accountKind smsa), and an install is drift fixed", async () => {
    const sql1 = computer("SQL1");
    const { requests, outcome } = await run([{ computer: "SQL1", accounts: [DN] }], [sql1.dn]);
    expect(requests[0]?.bindings[0]).toMatchObject({ account: "MSA-SQL1", accountKind: "smsa" });
    expect([...(outcome?.plan.drift ?? [])]).toEqual(["host-retrieval"]);
    expect(outcome?.retrievable).toBe("yes");
  });

  it("linked to another computer in AD: the host is not touched, and the binding waits naming that computer", async () => {
    const { requests, outcome } = await run(
      [
        { computer: "SQL1", accounts: [] },
        { computer: "SQL2", accounts: [DN] },
      ],
      [computer("SQL2").dn],
    );
    expect(requests).toEqual([]);
    expect(outcome?.plan.blocker).toEqual({
      outcome: "waiting",
      reason: "DependencyNotReady",
      message:
        "sMSA MSA-SQL1 is linked to computer SQL2 in AD, not to SQL1 (msDS-HostServiceAccount), and Windows installs it only where it is linked; the host is not touched until it is",
    });
  });
});

describe("status of a HostBinding whose sMSA the host refuses", () => {
  it("without a directory (the agent) the host decides: the refusal is drift and a failed attempt naming the reason", async () => {
    const requests: HostRequest[] = [];
    const error =
      "Windows refuses to install the standalone account 'MSA-SQL1$' on SQL1 (MsaInfoCannotInstall): AD links it to another computer";
    const { bindings } = await reconcileHosts(
      desiredOf(smsa(), binding),
      undefined,
      undefined,
      "apply",
      "enforce",
      {
        driver: recordingHost(requests, (b) => ({
          retrievable: false,
          install: "NotInstalled",
          items: [
            {
              item: "install",
              name: b.account,
              observed: false,
              desired: true,
              action: "failed",
              reason: "LinkedToAnotherComputer",
              error,
            },
          ],
        })),
        domain: "COMPANY",
        concurrency: 1,
        target: (host) => ({ host, address: host }),
      },
      hostMemory(),
      { now },
    );
    expect(requests[0]?.bindings[0]?.accountKind).toBe("smsa");
    const outcome = bindings[0]!;
    expect(outcome.retrievable).toBe("no");
    expect([...outcome.plan.drift]).toEqual(["host-retrieval"]);
    const status = summarize(
      { entry: outcome.plan, attempts: hostAttempts(outcome), executed: true, revision: "abc", now },
      undefined,
    );
    expect(status.conditions.find((c) => c.type === "Ready")).toMatchObject({ status: false });
    expect(status.conditions.find((c) => c.type === "ApplyFailed")?.message).toContain(
      `install MSA-SQL1: failed: ${error}`,
    );
  });
});
