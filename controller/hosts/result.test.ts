import { describe, expect, it } from "vitest";
import type { HostRequest } from "./contract.ts";
import { bindingRequest } from "./contract.ts";
import { HostError } from "./errors.ts";
import { decodeClixml, parseScriptOutput } from "./result.ts";

const request: HostRequest = {
  version: 2,
  mode: "observe",
  host: "SERVER1",
  domain: "COMPANY",
  bindings: [bindingRequest("b1", "MSA-service1", {})],
};

const good = {
  version: 2,
  host: "server1",
  mode: "observe",
  powershell: "5.1.20348.2849",
  bindings: [
    {
      name: "b1",
      account: "MSA-service1",
      retrievable: "pending",
      install: "NotNeeded",
      items: [
        {
          item: "retrievable",
          name: "MSA-service1",
          observed: false,
          desired: true,
          action: "pending",
          reason: "TicketNotRefreshed",
        },
      ],
    },
  ],
};

function fails(stdout: string, exitCode: number | null = 0, stderr = ""): HostError {
  try {
    parseScriptOutput("SERVER1", request, { stdout, stderr, exitCode });
  } catch (e) {
    if (e instanceof HostError) return e;
    throw e;
  }
  throw new Error("expected a HostError");
}

describe("parseScriptOutput", () => {
  it("accepts a result on the last line and compares the host name case-insensitively", () => {
    const r = parseScriptOutput("SERVER1", request, {
      stdout: `noise\r\n${JSON.stringify(good)}\r\n`,
      stderr: "",
      exitCode: 0,
    });
    expect(r.bindings[0]?.retrievable).toBe("pending");
    expect(r.bindings[0]?.items[0]?.reason).toBe("TicketNotRefreshed");
  });

  it("turns a refused request into a stalled RequestRejected with the script's code", () => {
    const e = fails(
      JSON.stringify({ version: 2, error: { code: "BadRequest", message: "request.mode must be observe or apply" } }),
    );
    expect([e.reason, e.outcome]).toEqual(["RequestRejected", "stalled"]);
    expect(e.message).toBe(
      "SERVER1: the host script refused the request (BadRequest): request.mode must be observe or apply",
    );
  });

  it("reports a process that ended without JSON as ScriptFailed with the end of stderr", () => {
    const e = fails("", 127, "sh: 1: powershell.exe: not found\n");
    expect([e.reason, e.outcome]).toEqual(["ScriptFailed", "transient"]);
    expect(e.message).toContain("exited with code 127: sh: 1: powershell.exe: not found");
  });

  it("decodes the CLIXML Windows PowerShell writes to a redirected stderr", () => {
    // As powershell.exe 5.1 writes it when started with -EncodedCommand.
    const clixml =
      "#< CLIXML\r\n" +
      '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' +
      '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj>' +
      '<S S="Error">Access to the path &apos;C:\\x&apos; is denied &amp; &lt;locked&gt;_x000D__x000A_</S>' +
      '<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>';
    const e = fails("", 1, clixml);
    expect(e.reason).toBe("ScriptFailed");
    expect(e.message).toContain("Access to the path 'C:\\x' is denied & <locked> At line:1 char:1");
    expect(e.message).not.toMatch(/CLIXML|<Objs|_x000D_|&apos;/);
    expect(decodeClixml("plain text\n")).toBe("plain text\n");
  });

  it("names the fix when the host runs PowerShell in Constrained Language Mode", () => {
    const e = fails(
      JSON.stringify({ version: 2, error: { code: "ConstrainedLanguage", message: "ConstrainedLanguage" } }),
      3,
    );
    expect([e.reason, e.outcome]).toEqual(["RequestRejected", "stalled"]);
    expect(e.message).toContain("Constrained Language Mode");
    expect(e.message).toContain("signed by a publisher the policy trusts");
    // An older bootstrap fails on its first .NET call instead; the message is the same.
    const old = fails(
      "",
      1,
      "Cannot invoke method. Method invocation is supported only on core types in this language mode.",
    );
    expect(old.message).toContain("Constrained Language Mode");
  });

  it.each([
    ["another host", { ...good, host: "SERVER2" }, 'answers for host "SERVER2"'],
    ["another mode", { ...good, mode: "apply" }, 'answers in mode "apply"'],
    ["another contract version", { ...good, version: 1 }, "contract version 1, expected 2"],
    ["missing bindings", { ...good, bindings: [] }, "has 0 bindings, expected 1"],
    [
      "an unknown action",
      { ...good, bindings: [{ ...good.bindings[0], items: [{ ...good.bindings[0]!.items[0], action: "deleted" }] }] },
      "action is not an action",
    ],
    [
      "an unknown reason",
      { ...good, bindings: [{ ...good.bindings[0], items: [{ ...good.bindings[0]!.items[0], reason: "Because" }] }] },
      "reason is not a reason",
    ],
  ])("refuses a result for %s as BadResult", (_what, body, message) => {
    const e = fails(JSON.stringify(body));
    expect([e.reason, e.outcome]).toEqual(["BadResult", "stalled"]);
    expect(e.message).toContain(message);
  });
});
