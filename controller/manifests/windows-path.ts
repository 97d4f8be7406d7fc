/**
 * What is wrong with a HostBinding's file-system path, said the way a Windows administrator
 * would say it. The CRD's pattern (crds/hostbindings.yaml, fileSystemAccess[].path) is the rule;
 * this names the first reason a path breaks it, so `validate` can say "UNC paths are refused"
 * rather than print the regular expression. The host script checks the same pattern again.
 */

/** The CRD's pattern for fileSystemAccess[].path (RE2-compatible, as Kubernetes requires). */
export const WINDOWS_FOLDER_PATTERN =
  '^[A-Za-z]:\\\\([^\\x00-\\x1f<>:"/\\\\|?*%]*[^\\x00-\\x1f<>:"/\\\\|?*%. ](\\\\[^\\x00-\\x1f<>:"/\\\\|?*%]*[^\\x00-\\x1f<>:"/\\\\|?*%. ])*)?$';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f]/;

/** The first problem of `path` as a folder for an ACL entry, or undefined when it has none. */
export function windowsPathProblem(path: string): string | undefined {
  const control = CONTROL.exec(path);
  if (control)
    return `contains the control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}; paths may not hold control characters`;
  if (path.startsWith("\\\\") || path.startsWith("//"))
    return "is a UNC or device path (\\\\server\\share, \\\\?\\...); only local folders in drive-letter form are managed: grant access on the file server itself";
  if (/%[^%\\]*%/.test(path) || path.includes("%"))
    return "holds an environment variable (%NAME%) or a '%'; variables are not expanded on the host, so write the folder out, for example C:\\ProgramData\\App";
  if (!/^[A-Za-z]:/.test(path))
    return "is not an absolute path; write it in drive-letter form, for example D:\\Apps\\Data";
  if (path.length === 2 || !/^[A-Za-z]:[\\/]/.test(path))
    return "is relative to the drive's current folder; an absolute path starts with the drive letter, ':' and '\\', for example D:\\Apps\\Data";
  if (path.includes("/")) return "uses '/'; separate folders with '\\' (backslash), as Windows shows them";
  if (/[*?]/.test(path)) return "holds a wildcard ('*' or '?'); list each folder by its exact path";
  if (path.length > 3 && path.endsWith("\\"))
    return "ends with a backslash; leave it out (only a drive root such as D:\\ ends with one)";
  const segments = path.slice(3).split("\\");
  for (const s of segments) {
    if (s === "..") return "holds a '..' segment; write the folder's own path, without '..'";
    if (s === ".") return "holds a '.' segment; write the folder's own path, without '.'";
    if (s === "") return "holds an empty segment ('\\\\'); separate folders with one backslash";
    const bad = /[<>:"|]/.exec(s);
    if (bad)
      return `holds ${JSON.stringify(bad[0])}, which Windows does not allow in a file or folder name (':' would name an alternate data stream)`;
    if (/[ .]$/.test(s))
      return `has the segment ${JSON.stringify(s)} ending with a space or a dot, which Windows strips, so it would name another folder`;
  }
  if (!new RegExp(WINDOWS_FOLDER_PATTERN, "u").test(path)) return "is not a plain absolute local path";
  return undefined;
}

/**
 * Win32 reserved device names (CON, PRN, AUX, NUL, COM0-9, LPT0-9, with the superscript digits
 * 1-3, and CONIN$ and CONOUT$), alone or before an extension: "D:\\Data\\NUL" or "COM1.txt"
 * opens the device, not a folder. The CRD's pattern cannot say this (RE2 has no lookahead).
 */
const DEVICE = /^(CON|PRN|AUX|NUL|COM[0-9\u00b9\u00b2\u00b3]|LPT[0-9\u00b9\u00b2\u00b3]|CONIN\$|CONOUT\$) *(\..*)?$/iu;

/** The problem of a path a segment of which is a reserved device name, or undefined. */
export function reservedNameProblem(path: string): string | undefined {
  const hit = path
    .slice(3)
    .split("\\")
    .find((s) => DEVICE.test(s));
  if (hit === undefined) return undefined;
  return `holds the segment ${JSON.stringify(hit)}, a reserved device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, CONIN$, CONOUT$, also with an extension): Windows would open the device, not a folder`;
}
