// Folder permissions for the gMSA (HostBinding fileSystemAccess), end to end: real pwsh behind a
// real sshd, launched as on Windows, with the file system and its ACLs doubled by the test host's
// state file (AccessControl.cs and the GmsaWindowsDoubles module: DirectorySecurity,
// FileSystemAccessRule, DirectoryInfo.SetAccessControl, Win32_LogicalDisk). Every outcome is checked in that file: what
// the folder's DACL holds afterwards, not only what the script said.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BindingRequest, HostDriver, HostResult } from "../controller/hosts/index.ts";
import { bindingRequest } from "../controller/hosts/index.ts";
import type { DoubleAce, DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import {
  allow,
  childFolder,
  hostEnv,
  readHostState,
  RIGHTS,
  SERVICE1_SID,
  writeHostState,
} from "./harness/pwsh-doubles/state.ts";
import type { SshHostLab } from "./harness/ssh-hosts.ts";
import { hostRequest, startSshHostLab } from "./harness/ssh-hosts.ts";

const DATA = "D:\\Scripts\\MyScript\\Data";
const BACKUP_OPERATORS = "S-1-5-32-551";
const SYNC = RIGHTS.Synchronize;
/** The doubles' events for a write of a folder's security descriptor. */
const ACL_WRITE = /^(Set-Acl|SetAccessControl)/;

let lab: SshHostLab;
let driver: HostDriver;

beforeAll(async () => {
  lab = await startSshHostLab("FS", 120_000);
  ({ driver } = lab);
});

afterAll(async () => {
  await lab?.stop();
});

const binding = (
  entries: BindingRequest["fileSystemAccess"],
  policy: BindingRequest["fileSystemAccessPolicy"] = "additive",
  account = "MSA-service1",
): BindingRequest =>
  bindingRequest("server1-service1", account, { fileSystemAccess: entries, fileSystemAccessPolicy: policy });

const modifyData = binding([
  { path: DATA, rights: "Modify", appliesTo: "ThisFolderSubfoldersAndFiles", createIfMissing: false },
]);

/** The item for DATA when the account has no entry there. */
const lacksModify = {
  name: DATA,
  action: "would-change",
  reason: "MissingRights",
  missing: "Modify (this folder, subfolders, files)",
};

function fileItems(result: HostResult): Record<string, unknown>[] {
  return (result.bindings[0]?.items ?? [])
    .filter((i) => i.item === "fileAccess")
    .map((i) => ({
      name: i.name,
      action: i.action,
      ...(i.reason !== undefined ? { reason: i.reason } : {}),
      ...(i.missing !== undefined ? { missing: i.missing } : {}),
    }));
}

/** The gMSA's explicit entries on a folder, as the host holds them. */
function gmsaEntries(state: DoubleHostState, path: string): DoubleAce[] {
  return (state.files?.[path]?.acl ?? []).filter((a) => a.sid === SERVICE1_SID && !a.inherited);
}

describe("folder permissions for the gMSA", { timeout: 300_000 }, () => {
  it("observe reports the missing entry, apply adds it by SID, a second observe finds no drift, and nothing else changed", async () => {
    const { target, statePath } = await lab.newHost((s) => {
      const data = s.files![DATA]!;
      // Another principal's explicit entry, and an owner the caller could not set back.
      data.acl.unshift(allow(BACKUP_OPERATORS, RIGHTS.ReadAndExecute));
      data.owner = "S-1-5-18";
    });
    const before = await readHostState(statePath);

    const observed = await driver.run(target, hostRequest(target, "observe", [modifyData]));
    expect(fileItems(observed)).toEqual([lacksModify]);
    expect(observed.bindings[0]?.items.find((i) => i.item === "fileAccess")?.observed).toBe("no explicit entry");
    expect((await readHostState(statePath)).files).toEqual(before.files);

    const applied = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(applied)).toEqual([
      { name: DATA, action: "changed", reason: "MissingRights", missing: "Modify (this folder, subfolders, files)" },
    ]);
    const after = await readHostState(statePath);
    const data = after.files![DATA]!;
    expect(gmsaEntries(after, DATA)).toEqual([
      {
        sid: SERVICE1_SID,
        type: "Allow",
        rights: RIGHTS.Modify | SYNC,
        inheritance: "ContainerInherit, ObjectInherit",
        propagation: "None",
        inherited: false,
      },
    ]);
    // The other principal's entry, every inherited entry and the owner are as they were.
    const untouched = (acl: DoubleAce[]): DoubleAce[] => acl.filter((a) => a.sid !== SERVICE1_SID);
    expect(untouched(data.acl)).toEqual(before.files![DATA]!.acl);
    expect(data.owner).toBe("S-1-5-18");
    expect(after.events?.some((e) => e.command.endsWith(" owner"))).toBe(false);

    const again = await driver.run(target, hostRequest(target, "observe", [modifyData]));
    expect(fileItems(again)).toEqual([{ name: DATA, action: "none" }]);
    expect(again.bindings[0]?.items.find((i) => i.item === "fileAccess")?.observed).toBe(
      "Modify (this folder, subfolders and files)",
    );
  });

  it("an entry removed by hand is drift, and apply puts it back", async () => {
    const { target, statePath } = await lab.newHost();
    await driver.run(target, hostRequest(target, "apply", [modifyData]));
    const state = await readHostState(statePath);
    state.files![DATA]!.acl = state.files![DATA]!.acl.filter((a) => a.sid !== SERVICE1_SID);
    await writeHostState(statePath, state);

    const observed = await driver.run(target, hostRequest(target, "observe", [modifyData]));
    expect(fileItems(observed)).toEqual([lacksModify]);
    await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(gmsaEntries(await readHostState(statePath), DATA).map((a) => a.rights)).toEqual([RIGHTS.Modify | SYNC]);
  });

  it("a narrower entry is widened in place, naming the rights it lacked", async () => {
    const { target, statePath } = await lab.newHost((s) => {
      s.files![DATA]!.acl.unshift(allow(SERVICE1_SID, RIGHTS.ReadAndExecute));
    });
    const applied = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(applied)).toEqual([
      {
        name: DATA,
        action: "changed",
        reason: "MissingRights",
        missing: "Write, Delete (this folder, subfolders, files)",
      },
    ]);
    expect(gmsaEntries(await readHostState(statePath), DATA).map((a) => a.rights)).toEqual([RIGHTS.Modify | SYNC]);
  });

  it("a wider entry is reported and kept when the list is additive, and narrowed when it is exact", async () => {
    const { target, statePath } = await lab.newHost((s) => {
      s.files![DATA]!.acl.unshift(allow(SERVICE1_SID, RIGHTS.FullControl));
    });
    const additive = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(additive)).toEqual([{ name: DATA, action: "would-change", reason: "WiderThanDeclared" }]);
    expect(additive.bindings[0]?.items.find((i) => i.item === "fileAccess")?.error).toMatch(
      /grant more than declared \(FullControl \(this folder, subfolders and files\)\); kept/,
    );
    expect(gmsaEntries(await readHostState(statePath), DATA).map((a) => a.rights)).toEqual([RIGHTS.FullControl]);

    const exact = binding(modifyData.fileSystemAccess, "exact");
    const observed = await driver.run(target, hostRequest(target, "observe", [exact]));
    expect(fileItems(observed)).toEqual([{ name: DATA, action: "would-change", reason: "WiderThanDeclared" }]);
    const applied = await driver.run(target, hostRequest(target, "apply", [exact]));
    expect(fileItems(applied)).toEqual([{ name: DATA, action: "changed", reason: "WiderThanDeclared" }]);
    expect(gmsaEntries(await readHostState(statePath), DATA).map((a) => a.rights)).toEqual([RIGHTS.Modify | SYNC]);
    const again = await driver.run(target, hostRequest(target, "observe", [exact]));
    expect(fileItems(again)).toEqual([{ name: DATA, action: "none" }]);
  });

  it("the folder's audit entries (SACL) and protected DACL survive apply: only the DACL is written", async () => {
    // An administrator audits deletes on the data folder and broke its inheritance. Set-Acl would
    // write every section of an object that holds the DACL alone, so run elevated it would write an
    // empty SACL and drop the audit entries; run without SeSecurityPrivilege it fails on this folder.
    const audit = [{ sid: "S-1-1-0", rights: 0x10000 /* DELETE */, flags: "Success, Failure" as const }];
    const { target, statePath } = await lab.newHost((s) => {
      const data = s.files![DATA]!;
      data.audit = audit;
      data.protected = true;
      data.acl = data.acl.map((a) => ({ ...a, inherited: false }));
    });
    const applied = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(applied)).toEqual([
      { name: DATA, action: "changed", reason: "MissingRights", missing: "Modify (this folder, subfolders, files)" },
    ]);
    const after = await readHostState(statePath);
    expect(after.files![DATA]!.audit).toEqual(audit);
    expect(after.files![DATA]!.protected).toBe(true);
    expect(gmsaEntries(after, DATA).map((a) => a.rights)).toEqual([RIGHTS.Modify | SYNC]);
    expect(after.events?.filter((e) => ACL_WRITE.test(e.command) && e.command !== "SetAccessControl")).toEqual([]);
  });

  it("a deny entry for the account is reported and nothing is written", async () => {
    const { target, statePath } = await lab.newHost((s) => {
      s.files![DATA]!.acl.unshift({ ...allow(SERVICE1_SID, RIGHTS.Write), type: "Deny", rights: RIGHTS.Write });
    });
    const applied = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(applied)).toEqual([{ name: DATA, action: "failed", reason: "DeniedByAcl" }]);
    expect((await readHostState(statePath)).events?.some((e) => ACL_WRITE.test(e.command))).toBe(false);
  });

  it("an inherited deny does not outweigh the account's explicit allow entry, which Windows checks first", async () => {
    // Canonical order: explicit deny, explicit allow, then inherited entries. A deny inherited
    // from a parent folder blocks nothing an explicit allow entry here already grants.
    const inheritedDeny: DoubleAce = {
      ...allow(SERVICE1_SID, RIGHTS.Write),
      type: "Deny",
      rights: RIGHTS.Write,
      inherited: true,
    };
    const { target, statePath } = await lab.newHost((s) => {
      const data = s.files![DATA]!;
      data.acl = [allow(SERVICE1_SID, RIGHTS.Modify), ...data.acl, inheritedDeny];
    });
    const observed = await driver.run(target, hostRequest(target, "observe", [modifyData]));
    expect(fileItems(observed)).toEqual([{ name: DATA, action: "none" }]);

    // Without the explicit entry, adding one would override the parent's deny: left to a person.
    const state = await readHostState(statePath);
    state.files![DATA]!.acl = state.files![DATA]!.acl.filter((a) => a.sid !== SERVICE1_SID || a.inherited);
    await writeHostState(statePath, state);
    const applied = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(applied)).toEqual([{ name: DATA, action: "failed", reason: "DeniedByAcl" }]);
    expect(applied.bindings[0]?.items.find((i) => i.item === "fileAccess")?.error).toMatch(
      /inherited deny entry .* denies Write; an explicit allow entry here would override it/,
    );
    expect((await readHostState(statePath)).events?.some((e) => ACL_WRITE.test(e.command))).toBe(false);
  });

  it("a DACL out of canonical order is reported, not reordered, as .NET refuses to modify it", async () => {
    // An explicit allow entry before an explicit deny entry, as some tools write them.
    const { target, statePath } = await lab.newHost((s) => {
      const data = s.files![DATA]!;
      const deny: DoubleAce = { ...allow(BACKUP_OPERATORS, RIGHTS.Write), type: "Deny", rights: RIGHTS.Write };
      data.acl = [allow(BACKUP_OPERATORS, RIGHTS.ReadAndExecute), deny, ...data.acl];
    });
    const before = (await readHostState(statePath)).files![DATA]!.acl;
    const applied = await driver.run(target, hostRequest(target, "apply", [modifyData]));
    expect(fileItems(applied)).toMatchObject([{ name: DATA, action: "failed", reason: "Error" }]);
    expect(applied.bindings[0]?.items.find((i) => i.item === "fileAccess")?.error).toMatch(/not in canonical form/);
    const after = await readHostState(statePath);
    expect(after.files![DATA]!.acl).toEqual(before);
    expect(after.events?.some((e) => ACL_WRITE.test(e.command))).toBe(false);
  });

  it("a missing folder is reported, or created with inherited permissions when createIfMissing says so", async () => {
    const logs = "D:\\Scripts\\MyScript\\Logs\\Daily";
    const { target, statePath } = await lab.newHost();
    const entries = (create: boolean): BindingRequest =>
      binding([{ path: logs, rights: "Modify", appliesTo: "ThisFolderOnly", createIfMissing: create }]);

    const reported = await driver.run(target, hostRequest(target, "apply", [entries(false)]));
    expect(fileItems(reported)).toEqual([{ name: logs, action: "failed", reason: "NotFound" }]);
    expect((await readHostState(statePath)).files?.[logs]).toBeUndefined();

    const observed = await driver.run(target, hostRequest(target, "observe", [entries(true)]));
    expect(fileItems(observed)).toMatchObject([{ name: logs, action: "would-change", reason: "NotFound" }]);
    expect((await readHostState(statePath)).files?.[logs]).toBeUndefined();

    const created = await driver.run(target, hostRequest(target, "apply", [entries(true)]));
    expect(fileItems(created)).toEqual([
      { name: logs, action: "changed", reason: "NotFound", missing: "Modify (this folder)" },
    ]);
    const state = await readHostState(statePath);
    expect(state.files?.["D:\\Scripts\\MyScript\\Logs"]).toBeDefined();
    expect(gmsaEntries(state, logs).map((a) => [a.rights, a.inheritance, a.propagation])).toEqual([
      [RIGHTS.Modify | SYNC, "None", "None"],
    ]);
    expect(state.files?.[logs]?.acl.filter((a) => a.inherited).length).toBeGreaterThan(0);
  });

  it("a junction, a symbolic link above the folder, a FAT32 drive and a missing drive are reported, never followed", async () => {
    const { target, statePath } = await lab.newHost((s) => {
      const files = s.files!;
      files["D:\\Linked"] = {
        ...childFolder(files["D:\\"]!.acl),
        reparse: { type: "Junction", target: "C:\\Windows" },
      };
      files["D:\\Apps"] = { ...childFolder(files["D:\\"]!.acl), reparse: { type: "SymbolicLink", target: "C:\\Apps" } };
      files["E:\\Data"] = { type: "Directory", owner: "S-1-5-18", acl: [] };
    });
    const entry = (path: string): BindingRequest["fileSystemAccess"][number] => ({
      path,
      rights: "Read",
      appliesTo: "ThisFolderSubfoldersAndFiles",
      createIfMissing: true,
    });
    const result = await driver.run(
      target,
      hostRequest(target, "apply", [
        binding([entry("D:\\Linked"), entry("D:\\Apps\\Data"), entry("E:\\Data"), entry("Z:\\Data")]),
      ]),
    );
    expect(fileItems(result)).toEqual([
      { name: "D:\\Linked", action: "failed", reason: "ReparsePoint" },
      { name: "D:\\Apps\\Data", action: "failed", reason: "ReparsePoint" },
      { name: "E:\\Data", action: "failed", reason: "UnsupportedVolume" },
      { name: "Z:\\Data", action: "failed", reason: "NotFound" },
    ]);
    const errors = result.bindings[0]?.items.filter((i) => i.item === "fileAccess").map((i) => i.error);
    expect(errors).toEqual([
      "'D:\\Linked' is a junction to 'C:\\Windows'; its permissions are not followed or changed",
      "'D:\\Apps' is a symboliclink to 'C:\\Apps'; its permissions are not followed or changed",
      "E: is FAT32; only NTFS and ReFS volumes keep permissions per folder",
      "this host has no drive Z:",
    ]);
    const events = (await readHostState(statePath)).events ?? [];
    expect(events.filter((e) => ACL_WRITE.test(e.command) || e.command === "New-Item")).toEqual([]);
  });

  it("an account the host cannot resolve fails its folder items without writing", async () => {
    const { target, statePath } = await lab.newHost();
    const result = await driver.run(
      target,
      hostRequest(target, "apply", [binding(modifyData.fileSystemAccess, "additive", "MSA-nobody")]),
    );
    expect(fileItems(result)).toEqual([{ name: DATA, action: "failed", reason: "Error" }]);
    expect(result.bindings[0]?.items.find((i) => i.item === "fileAccess")?.error).toContain(
      "does not resolve to a SID",
    );
    expect((await readHostState(statePath)).events?.some((e) => ACL_WRITE.test(e.command))).toBe(false);
  });

  it("a path full of PowerShell metacharacters stays data", async () => {
    const hostile = "D:\\Apps $(Set-Content -Path pwned -Value x); `whoami` 'q' ‘’“” [1] ${env}";
    const { target, statePath } = await lab.newHost((s) => {
      s.files![hostile] = childFolder(s.files!["D:\\"]!.acl);
    });
    const request = binding([
      { path: hostile, rights: "ReadAndExecute", appliesTo: "ThisFolderSubfoldersAndFiles", createIfMissing: false },
      {
        path: `${hostile}\\new; Remove-Item -Recurse -Force x`,
        rights: "Write",
        appliesTo: "ThisFolderOnly",
        createIfMissing: true,
      },
    ]);
    const result = await driver.run(target, hostRequest(target, "apply", [request]));
    expect(fileItems(result).map((i) => [i["name"], i["action"]])).toEqual([
      [hostile, "changed"],
      [`${hostile}\\new; Remove-Item -Recurse -Force x`, "changed"],
    ]);
    const state = await readHostState(statePath);
    expect(gmsaEntries(state, hostile).map((a) => a.rights)).toEqual([RIGHTS.ReadAndExecute | SYNC]);
    expect(gmsaEntries(state, `${hostile}\\new; Remove-Item -Recurse -Force x`).map((a) => a.rights)).toEqual([
      RIGHTS.Write | SYNC,
    ]);
    // Nothing else on the host was created or changed.
    const writes = (state.events ?? [])
      .map((e) => e.command)
      .filter((c) => !/^(NetQueryServiceAccount|LookupAccountName)/.test(c));
    expect(writes.sort()).toEqual(["New-Item", "SetAccessControl", "SetAccessControl"]);
  });

  it("the ACL double refuses an entry for an account name that does not translate, as Windows does", async () => {
    // The script always writes by SID; this is the double's own strictness, checked directly.
    const { statePath } = await lab.newHost();
    const script = `
      $null = Get-CimInstance -ClassName Win32_LogicalDisk
      $acl = New-Object System.Security.AccessControl.DirectorySecurity -ArgumentList '${DATA}', 'Access'
      foreach ($name in 'COMPANY\\MSA-service1$', 'COMPANY\\MSA-nobody$') {
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule -ArgumentList $name, 'Read', 'None', 'None', 'Allow'
        try { $acl.AddAccessRule($rule); 'added' } catch { $_.Exception.InnerException.GetType().Name + ': ' + $_.Exception.InnerException.Message }
      }
      @($acl.GetAccessRules($true, $false, [System.Security.Principal.SecurityIdentifier]) | ForEach-Object { $_.IdentityReference.Value }) -join ','`;
    const { stdout } = await promisify(execFile)("pwsh", ["-NoProfile", "-NonInteractive", "-Command", script], {
      env: { ...process.env, ...hostEnv(statePath) },
    });
    expect(stdout.trim().split("\n")).toEqual([
      "added",
      "IdentityNotMappedException: Some or all identity references could not be translated.",
      SERVICE1_SID,
    ]);
  });
});
