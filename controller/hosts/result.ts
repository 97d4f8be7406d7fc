/**
 * Turns what the host script printed into a checked HostResult, or a typed HostError. A result
 * that does not answer the request it was given (another host, another mode, other bindings) is
 * refused: it came from an old script or a mixed-up connection.
 */
import type {
  BindingResult,
  HostItemResult,
  HostRequest,
  HostResult,
  ItemAction,
  ItemKind,
  ItemReason,
} from "./contract.ts";
import { HOST_CONTRACT_VERSION } from "./contract.ts";
import { HostError } from "./errors.ts";

const ITEM_KINDS: ReadonlySet<string> = new Set<ItemKind>([
  "retrievable",
  "install",
  "localGroup",
  "logonRight",
  "service",
  "scheduledTask",
  "iisAppPool",
  "fileAccess",
]);
const ACTIONS: ReadonlySet<string> = new Set<ItemAction>(["none", "changed", "would-change", "failed", "pending"]);
const REASONS: ReadonlySet<string> = new Set<ItemReason>([
  "NotRetrievable",
  "NotInstalled",
  "LinkedToAnotherComputer",
  "TicketNotRefreshed",
  "NotMember",
  "Missing",
  "RevokedByPolicy",
  "WrongIdentity",
  "NotFound",
  "WaitingForRetrieval",
  "DefinedByPolicy",
  "DeniedByPolicy",
  "NoLogonRight",
  "MissingRights",
  "WiderThanDeclared",
  "DeniedByAcl",
  "ReparsePoint",
  "UnsupportedVolume",
  "Error",
]);

/** What a finished remote process left behind. */
export interface ScriptOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
}

/**
 * Windows PowerShell (and pwsh) started with -EncodedCommand and a redirected stderr write their
 * error stream as CLIXML: a `#< CLIXML` line and `<Objs>` with one `<S S="Error">` per line,
 * XML-escaped, with control characters as `_xHHHH_`. Returns the plain text (other stderr lines
 * kept, ANSI colours removed); text that is not CLIXML comes back unchanged.
 */
export function decodeClixml(stderr: string): string {
  if (!stderr.includes("#< CLIXML")) return stderr;
  const out: string[] = [];
  for (const line of stderr.split(/\r?\n/)) {
    if (line.trim() === "#< CLIXML") continue;
    if (!line.includes("<Objs")) {
      out.push(line);
      continue;
    }
    for (const m of line.matchAll(/<S S="(?:Error|Warning)">([\s\S]*?)<\/S>/g)) {
      const text = (m[1] ?? "")
        .replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
        .replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">")
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, "&");
      out.push(text);
    }
  }
  // eslint-disable-next-line no-control-regex
  return out.join("").replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "");
}

/** What the operator must do when the host runs PowerShell in Constrained Language Mode. */
export const CLM_HELP =
  "PowerShell runs in Constrained Language Mode on this host (an AppLocker or WDAC policy in enforce mode), " +
  "which blocks the .NET calls and Add-Type the host script needs; the fix is on the host's policy: " +
  "exempt the account the controller logs on with, or run the script as a file signed by a publisher the " +
  "policy trusts (signed scripts run in Full Language)";

/** The end of a text, on one line, bounded: for error messages. */
export function tail(text: string, max = 400): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > max ? `...${oneLine.slice(oneLine.length - max)}` : oneLine;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseItem(v: Json | undefined, where: string): HostItemResult {
  if (!isObject(v)) throw new Error(`${where} is not an object`);
  const { item, name, observed, desired, action, reason, restarted, error, missing } = v;
  if (typeof item !== "string" || !ITEM_KINDS.has(item)) throw new Error(`${where}.item is not an item kind`);
  if (typeof name !== "string") throw new Error(`${where}.name is not a string`);
  if (!(observed === null || typeof observed === "string" || typeof observed === "boolean"))
    throw new Error(`${where}.observed has the wrong type`);
  if (!(typeof desired === "string" || typeof desired === "boolean"))
    throw new Error(`${where}.desired has the wrong type`);
  if (typeof action !== "string" || !ACTIONS.has(action)) throw new Error(`${where}.action is not an action`);
  if (reason !== undefined && (typeof reason !== "string" || !REASONS.has(reason)))
    throw new Error(`${where}.reason is not a reason`);
  if (restarted !== undefined && typeof restarted !== "boolean") throw new Error(`${where}.restarted is not a boolean`);
  if (error !== undefined && typeof error !== "string") throw new Error(`${where}.error is not a string`);
  if (missing !== undefined && typeof missing !== "string") throw new Error(`${where}.missing is not a string`);
  return {
    item: item as ItemKind,
    name,
    observed,
    desired,
    action: action as ItemAction,
    ...(reason !== undefined ? { reason: reason as ItemReason } : {}),
    ...(restarted !== undefined ? { restarted } : {}),
    ...(error !== undefined ? { error } : {}),
    ...(missing !== undefined ? { missing } : {}),
  };
}

function parseBinding(v: Json | undefined, where: string, expectedName: string): BindingResult {
  if (!isObject(v)) throw new Error(`${where} is not an object`);
  const { name, account, retrievable, install, items } = v;
  if (name !== expectedName) throw new Error(`${where}.name is not '${expectedName}'`);
  if (typeof account !== "string") throw new Error(`${where}.account is not a string`);
  if (!(retrievable === true || retrievable === false || retrievable === "pending"))
    throw new Error(`${where}.retrievable is not true, false or "pending"`);
  if (!(install === "NotNeeded" || install === "Installed" || install === "NotInstalled"))
    throw new Error(`${where}.install is not "NotNeeded", "Installed" or "NotInstalled"`);
  if (!Array.isArray(items)) throw new Error(`${where}.items is not an array`);
  return {
    name,
    account,
    retrievable,
    install,
    items: items.map((item, i) => parseItem(item, `${where}.items[${i}]`)),
  };
}

/**
 * Parses the script's stdout (its last non-empty line is the result) against the request.
 * Throws HostError: RequestRejected when the script refused the request, ScriptFailed when the
 * process ended without a result, BadResult when the result breaks the contract.
 */
export function parseScriptOutput(host: string, request: HostRequest, out: ScriptOutput): HostResult {
  const lines = out.stdout.split(/\r?\n/).filter((l) => l.trim() !== "");
  const last = lines[lines.length - 1];
  let parsed: Json;
  try {
    if (last === undefined) throw new Error("no output");
    parsed = JSON.parse(last) as Json;
  } catch {
    const why = out.exitCode === 0 ? "printed no JSON result" : `exited with code ${String(out.exitCode)}`;
    const text = decodeClixml(out.stderr);
    if (/supported only on core types in this language mode|ConstrainedLanguage/i.test(text))
      throw new HostError("RequestRejected", host, CLM_HELP);
    const stderr = tail(text);
    throw new HostError("ScriptFailed", host, `the host script ${why}${stderr ? `: ${stderr}` : ""}`);
  }
  if (!isObject(parsed)) throw new HostError("BadResult", host, "the host script's result is not a JSON object");
  const err = parsed["error"];
  if (isObject(err)) {
    const code = typeof err["code"] === "string" ? err["code"] : "Unknown";
    const message = typeof err["message"] === "string" ? err["message"] : "";
    if (code === "ConstrainedLanguage") throw new HostError("RequestRejected", host, `${CLM_HELP} (${message})`);
    throw new HostError("RequestRejected", host, `the host script refused the request (${code}): ${message}`);
  }
  try {
    if (parsed["version"] !== HOST_CONTRACT_VERSION)
      throw new Error(`contract version ${JSON.stringify(parsed["version"])}, expected ${HOST_CONTRACT_VERSION}`);
    const resultHost = parsed["host"];
    if (typeof resultHost !== "string" || resultHost.toLowerCase() !== request.host.toLowerCase())
      throw new Error(`answers for host ${JSON.stringify(resultHost)}`);
    if (parsed["mode"] !== request.mode) throw new Error(`answers in mode ${JSON.stringify(parsed["mode"])}`);
    const powershell = parsed["powershell"];
    if (typeof powershell !== "string") throw new Error("has no powershell version");
    const bindings = parsed["bindings"];
    if (!Array.isArray(bindings) || bindings.length !== request.bindings.length)
      throw new Error(
        `has ${Array.isArray(bindings) ? bindings.length : "no"} bindings, expected ${request.bindings.length}`,
      );
    return {
      version: HOST_CONTRACT_VERSION,
      host: resultHost,
      mode: request.mode,
      powershell,
      bindings: bindings.map((b, i) => parseBinding(b, `bindings[${i}]`, request.bindings[i]?.name ?? "")),
    };
  } catch (e) {
    throw new HostError("BadResult", host, `the host script's result ${e instanceof Error ? e.message : String(e)}`);
  }
}
