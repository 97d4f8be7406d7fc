// The host script must run on Windows PowerShell 5.1 (every Windows Server has it; PowerShell 7
// is optional). Checked without Windows: test/harness/ps51-check.ps1 walks the script's AST in
// pwsh for syntax, cmdlets and parameters newer than 5.1 and compiles its Add-Type code as C# 5
// against a list of APIs .NET Framework 4.7.2 lacks.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const exec = promisify(execFile);
const CHECK = fileURLToPath(new URL("./harness/ps51-check.ps1", import.meta.url));
const SCRIPT = fileURLToPath(new URL("../controller/hosts/gmsa-host.ps1", import.meta.url));
const BAD = fileURLToPath(new URL("./fixtures/ps51-bad.ps1", import.meta.url));

async function check(path: string): Promise<string[]> {
  const { stdout } = await exec("pwsh", ["-NoProfile", "-NonInteractive", "-File", CHECK, "-Path", path]);
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

describe("Windows PowerShell 5.1 compatibility", () => {
  it("gmsa-host.ps1 uses nothing newer than Windows PowerShell 5.1 and .NET Framework 4.7.2, under strict mode", async () => {
    expect(await check(SCRIPT)).toEqual([]);
  }, 60_000);

  it("the check finds each kind of PowerShell 7 syntax, parameter and C# feature", async () => {
    const problems = await check(BAD);
    expect(problems.map((p) => p.replace(/:.*$/, "")).sort((a, b) => Number(a) - Number(b))).toEqual([
      "3",
      "4",
      "5",
      "6",
      "7",
      "8",
      "9",
      "10",
      "11",
      "12",
      "12",
    ]);
    expect(problems.join("\n")).toMatch(/ConvertFrom-Json -AsHashtable/);
    expect(problems.join("\n")).toMatch(/interpolated strings/);
  }, 60_000);
});
