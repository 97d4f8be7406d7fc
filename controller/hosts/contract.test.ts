import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { bindingRequest, HOST_CONTRACT_VERSION, LOGON_RIGHTS, RESTART_POLICIES, RUN_LEVELS } from "./contract.ts";

type Schema = { properties: Record<string, Schema>; items: Schema; enum?: string[]; default?: unknown };

const crd = parse(readFileSync(new URL("../../crds/hostbindings.yaml", import.meta.url), "utf8")) as {
  spec: { versions: { schema: { openAPIV3Schema: Schema } }[] };
};
const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties["spec"]!.properties;

describe("contract and CRD agree", () => {
  it("uses the CRD's logon rights, restart policies and run levels", () => {
    expect(spec["logonRights"]!.items.enum).toEqual([...LOGON_RIGHTS]);
    expect(spec["services"]!.items.properties["restart"]!.enum).toEqual([...RESTART_POLICIES]);
    expect(spec["iisAppPools"]!.items.properties["restart"]!.enum).toEqual([...RESTART_POLICIES]);
    expect(spec["scheduledTasks"]!.items.properties["runLevel"]!.enum).toEqual([...RUN_LEVELS]);
  });

  it("fills the CRD's defaults into a binding request", () => {
    const b = bindingRequest("b", "MSA-service1", {
      services: [{ name: "S" }],
      scheduledTasks: [{ name: "T" }],
      iisAppPools: [{ name: "P" }],
      fileSystemAccess: [{ path: "D:\\Data", rights: "Modify" }],
    });
    const access = spec["fileSystemAccess"]!.items.properties;
    expect(b).toEqual({
      name: "b",
      account: "MSA-service1",
      accountKind: "gmsa",
      localGroups: [],
      logonRights: [],
      purgeKerberosTickets: spec["purgeKerberosTickets"]!.default,
      recentlyAllowed: false,
      rightsGrantedBefore: [],
      observeOnly: false,
      services: [{ name: "S", restart: spec["services"]!.items.properties["restart"]!.default }],
      scheduledTasks: [
        {
          name: "T",
          path: spec["scheduledTasks"]!.items.properties["path"]!.default,
          runLevel: spec["scheduledTasks"]!.items.properties["runLevel"]!.default,
        },
      ],
      iisAppPools: [{ name: "P", restart: spec["iisAppPools"]!.items.properties["restart"]!.default }],
      fileSystemAccess: [
        {
          path: "D:\\Data",
          rights: "Modify",
          appliesTo: access["appliesTo"]!.default,
          createIfMissing: access["createIfMissing"]!.default,
        },
      ],
      fileSystemAccessPolicy: spec["fileSystemAccessPolicy"]!.default,
    });
  });

  it("speaks the same contract version as the host script", () => {
    const script = readFileSync(new URL("./gmsa-host.ps1", import.meta.url), "utf8");
    expect(script).toMatch(new RegExp(`^\\$ContractVersion = ${HOST_CONTRACT_VERSION}$`, "m"));
  });

  it("keeps Invoke-Expression and string-built commands out of the host script", () => {
    const script = readFileSync(new URL("./gmsa-host.ps1", import.meta.url), "utf8").replace(/<#[\s\S]*?#>/g, "");
    expect(script).not.toMatch(/Invoke-Expression|\biex\b|ScriptBlock\]::Create|-Filter\b/i);
    // Add-Type compiles one constant: a single-quoted here-string (no interpolation), or loads
    // the assembly compiled from it.
    expect([...script.matchAll(/Add-Type [^\n]*/g)].map((m) => m[0])).toEqual([
      "Add-Type -TypeDefinition $NativeSource -Language CSharp -OutputAssembly $tmp -OutputType Library",
      "Add-Type -Path $dll",
    ]);
    expect(script).toMatch(/^\$NativeSource = @'$/m);
    expect(script.match(/\$NativeSource\b/g)?.length).toBe(3);
  });
});
