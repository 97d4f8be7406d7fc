// HostBinding.spec.fileSystemAccess: a path from Git ends up in an ACL on a Windows server, so
// anything but a plain absolute local path in drive-letter form is refused at validate time,
// with the file, the line and what is wrong with it.
import { describe, expect, it } from "vitest";
import { parseManifests } from "./index.ts";
import { SCHEMAS } from "./schemas.generated.ts";
import { WINDOWS_FOLDER_PATTERN } from "./windows-path.ts";

const encoder = new TextEncoder();

const GMSA = `apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: msa-service1
spec:
  accountName: MSA-service1
  dnsHostName: service1.company.local
  principalsAllowedToRetrieveManagedPassword:
    - computer: SERVER1
`;

/** A HostBinding whose fileSystemAccess lists `paths` (each a YAML scalar, quoted as given), path on line 10 + 2i. */
function binding(paths: string[], extra = ""): string {
  return `apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: server1-service1
spec:
  host: SERVER1
  account: msa-service1
${extra}  fileSystemAccess:
${paths.map((p) => `    - path: ${p}\n      rights: Modify`).join("\n")}
`;
}

function errors(yaml: string): string[] {
  const result = parseManifests([
    { path: "gmsa.yaml", content: encoder.encode(GMSA) },
    { path: "binding.yaml", content: encoder.encode(yaml) },
  ]);
  return result.ok ? [] : result.errors.map((e) => `${e.file}:${e.line} ${e.code} ${e.message}`);
}

describe("fileSystemAccess paths", () => {
  it("the explanations cover the CRD's own pattern", () => {
    const text = JSON.stringify(SCHEMAS.HostBinding);
    expect(text).toContain(JSON.stringify(WINDOWS_FOLDER_PATTERN));
  });

  it("a plain local path in drive-letter form is accepted, with the defaults filled in", () => {
    const result = parseManifests([
      { path: "gmsa.yaml", content: encoder.encode(GMSA) },
      {
        path: "binding.yaml",
        content: encoder.encode(binding(["'D:\\Scripts\\My Script\\Data'", "'E:\\'", "'C:\\Apps\\$(x);`q''‘’“”'"])),
      },
    ]);
    expect(result.ok ? [] : result.errors.map((e) => e.message)).toEqual([]);
    if (!result.ok) return;
    const spec = result.desired.bindings.get("server1-service1")?.spec;
    expect(spec?.fileSystemAccessPolicy).toBe("additive");
    expect(spec?.fileSystemAccess[0]).toEqual({
      path: "D:\\Scripts\\My Script\\Data",
      rights: "Modify",
      appliesTo: "ThisFolderSubfoldersAndFiles",
      createIfMissing: false,
    });
    expect(spec?.fileSystemAccess[2]?.path).toBe("C:\\Apps\\$(x);`q'‘’“”");
  });

  it("hostile paths are refused at their line, each saying what is wrong", () => {
    const hostile: [string, RegExp][] = [
      ["'\\\\fileserver\\share\\data'", /UNC/],
      ["'\\\\?\\C:\\data'", /UNC|device/],
      ["'Data\\Reports'", /absolute/],
      ["'C:Data'", /absolute/],
      ["'C:\\Data\\..\\Windows'", /'\.\.'/],
      ["'C:\\Data\\.\\x'", /'\.'/],
      ["'C:\\Data\\*'", /wildcard/],
      ["'C:\\Data\\file?.txt'", /wildcard/],
      ["'%ProgramData%\\App'", /environment variable/],
      ["'C:\\Users\\%USERNAME%\\x'", /environment variable/],
      ['"C:\\\\Data\\u0007bell"', /control character/],
      ['"C:\\\\Data\\nx"', /control character/],
      ["'C:/Data/x'", /backslash/],
      ["'C:\\Data\\x:stream'", /':'/],
      ["'C:\\Data\\trailing. '", /space or a dot/],
      ["'C:\\Data\\'", /backslash/],
    ];
    const lines = errors(binding(hostile.map(([p]) => p)));
    expect(lines).toHaveLength(hostile.length);
    hostile.forEach(([, why], i) => {
      const line = lines[i] ?? "";
      expect(line, line).toMatch(
        new RegExp(`^binding\\.yaml:${9 + 2 * i} invalid-format spec\\.fileSystemAccess\\[${i}\\]\\.path: `),
      );
      expect(line).toMatch(why);
    });
  });

  it("a segment that is a reserved device name is refused: Windows opens the device, not a folder", () => {
    const reserved = [
      "'D:\\Data\\NUL'",
      "'D:\\CON'",
      "'D:\\Logs\\com1.txt'",
      "'D:\\x\\LPT¹'",
      "'D:\\CONIN$\\y'",
      "'D:\\aux .log'",
    ];
    const lines = errors(binding(reserved));
    expect(lines).toHaveLength(reserved.length);
    lines.forEach((line, i) => {
      expect(line).toMatch(
        new RegExp(`^binding\\.yaml:${9 + 2 * i} invalid-format spec\\.fileSystemAccess\\[${i}\\]\\.path: `),
      );
      expect(line).toMatch(/reserved device name/);
    });
    // Names that only start like one are folders like any other.
    expect(errors(binding(["'D:\\Console'", "'D:\\NULL'", "'D:\\COM10'", "'D:\\LPT'"]))).toEqual([]);
  });

  it("rights, appliesTo and the list policy are closed sets", () => {
    const yaml = `apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: server1-service1
spec:
  host: SERVER1
  account: msa-service1
  fileSystemAccessPolicy: replace
  fileSystemAccess:
    - path: 'D:\\Data'
      rights: Change
      appliesTo: Everything
`;
    expect(errors(yaml).map((l) => l.replace(/ spec\..*/, ""))).toEqual([
      "binding.yaml:8 invalid-value",
      "binding.yaml:11 invalid-value",
      "binding.yaml:12 invalid-value",
    ]);
  });

  it("the same folder listed twice, in any letter case, is refused", () => {
    const lines = errors(binding(["'D:\\Data'", "'d:\\DATA'"]));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^binding\.yaml:11 duplicate-item .*Windows compares paths without regard to case/);
  });
});
