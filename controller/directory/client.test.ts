// connectDirectory's refusals that need no server: they happen before or instead of a bind.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { connectDirectory } from "./client.ts";
import type { DirectoryOptions } from "./client.ts";
import { DirectoryError } from "./errors.ts";

const PASSWORD = "Pa55-never-printed";
const base: DirectoryOptions = {
  url: "ldaps://127.0.0.1:1",
  bindDn: "CN=svc,DC=x",
  bindPassword: PASSWORD,
  timeoutMs: 5_000,
};

async function failure(options: DirectoryOptions, signal?: AbortSignal): Promise<unknown> {
  try {
    await connectDirectory(options, signal);
  } catch (err) {
    return err;
  }
  throw new Error("connectDirectory resolved");
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("connectDirectory", () => {
  it("refuses plaintext ldap:// without startTls, naming the flag that would allow it", async () => {
    const err = await failure({ ...base, url: "ldap://127.0.0.1:389" });
    expect(err).toBeInstanceOf(DirectoryError);
    expect(err).toMatchObject({ outcome: "stalled", reason: "PlaintextRefused" });
    expect(String(err)).toMatch(/startTls: true.*allowInsecurePlaintext: true/);
  });

  it("refuses a URL that is not LDAP", async () => {
    expect(await failure({ ...base, url: "https://dc1" })).toMatchObject({
      outcome: "stalled",
      reason: "InvalidConfiguration",
    });
    expect(await failure({ ...base, url: "not a url" })).toMatchObject({
      outcome: "stalled",
      reason: "InvalidConfiguration",
    });
  });

  it("refuses an empty password, which would make the bind anonymous", async () => {
    expect(await failure({ ...base, bindPassword: "" })).toMatchObject({ outcome: "stalled", operation: "bind" });
  });

  it("an unreadable caFile is a stalled configuration error", async () => {
    expect(await failure({ ...base, caFile: "/nonexistent/ca.pem" })).toMatchObject({
      outcome: "stalled",
      reason: "InvalidConfiguration",
    });
  });

  it("a refused connection is transient and does not mention the password", async () => {
    const err = await failure({ ...base, url: `ldaps://127.0.0.1:${await closedPort()}` });
    expect(err).toMatchObject({ outcome: "transient", reason: "ConnectionFailed", operation: "bind" });
    expect(`${String(err)} ${JSON.stringify(err)} ${(err as Error).stack ?? ""}`).not.toContain(PASSWORD);
  });

  it("an already aborted signal stops before connecting", async () => {
    const controller = new AbortController();
    controller.abort(new Error("shutting down"));
    expect(await failure(base, controller.signal)).toMatchObject({ message: "shutting down" });
  });
});
