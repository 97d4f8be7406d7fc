/**
 * How the host script reaches PowerShell: a fixed bootstrap on the command line, the script and
 * the request on stdin.
 *
 * cmd.exe (the default shell of Windows OpenSSH) limits a command line to 8,191 characters, so
 * the script cannot ride on it. The command line carries only a constant bootstrap as
 * `-EncodedCommand`; stdin carries two lines, base64 of the script and base64 of the request
 * JSON (both UTF-8). The bootstrap turns the first line into a script block and passes the
 * second to it as the string parameter -RequestJson: the request is never parsed as code, and
 * base64 keeps both immune to the console code page.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { HostRequest } from "./contract.ts";

/**
 * Constrained Language Mode (AppLocker or WDAC in enforce mode) blocks the .NET calls below, so
 * the bootstrap first checks the language mode with core language only and answers with a
 * request error instead of a stack of "method invocation is supported only on core types".
 */
const CLM_CHECK =
  "if($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage'){" +
  '\'{"version":1,"error":{"code":"ConstrainedLanguage","message":"\'+$ExecutionContext.SessionState.LanguageMode+\'"}}\';exit 3}';

const BOOTSTRAP =
  CLM_CHECK +
  "$ErrorActionPreference='Stop';" +
  "$i=[Console]::In;" +
  "$s=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($i.ReadLine()));" +
  "$r=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($i.ReadLine()));" +
  "& ([ScriptBlock]::Create($s)) -RequestJson $r";

/** The bootstrap in the form `-EncodedCommand` takes (base64 of UTF-16LE); about 700 characters. */
export const ENCODED_BOOTSTRAP = Buffer.from(BOOTSTRAP, "utf16le").toString("base64");

/** The shell a Windows host runs the bootstrap with (Windows PowerShell 5.1 is on every server). */
export const DEFAULT_WINDOWS_SHELL = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass";

let cached: { text: string; sha256: string } | undefined;

/** The host script's text and its SHA-256 (hex), read once from gmsa-host.ps1 beside this file. */
export function hostScript(): { readonly text: string; readonly sha256: string } {
  if (cached === undefined) {
    const text = readFileSync(new URL("./gmsa-host.ps1", import.meta.url), "utf8");
    cached = { text, sha256: createHash("sha256").update(text).digest("hex") };
  }
  return cached;
}

/** The full command line for a shell: `<shell> -EncodedCommand <bootstrap>`. */
export function bootstrapCommand(shell: string): string {
  return `${shell} -EncodedCommand ${ENCODED_BOOTSTRAP}`;
}

/** What to write to the bootstrap's stdin for one request. */
export function stdinPayload(request: HostRequest): string {
  const script = Buffer.from(hostScript().text, "utf8").toString("base64");
  const json = Buffer.from(JSON.stringify(request), "utf8").toString("base64");
  return `${script}\n${json}\n`;
}
