// The status page at `/`, read the way a person reads it: in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core), with JavaScript off, served by the real controller
// running the examples/ manifests against one real Samba AD DC, plus an ADGroup naming a
// computer that does not exist (Stalled) and a gMSA in Observe mode whose description carries
// HTML, in Git and, edited by hand with ldapmodify, in AD. Assertions go through Chromium's DOM.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../controller/cli/main.ts";
import { loadConfig } from "../controller/config/index.ts";
import { createLogger, startController } from "../controller/main.ts";
import type { RunningController } from "../controller/main.ts";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { startServer } from "../controller/server/index.ts";
import type { RunningServer } from "../controller/server/index.ts";
import { createGitRepo } from "./harness/git-repo.ts";
import { Receiver } from "./harness/receiver.ts";
import type { GitRepo } from "./harness/git-repo.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";

const root = join(import.meta.dirname, "..");
const examples = join(root, "examples");

/** Debian's chromium; CHROMIUM_PATH overrides it. */
function chromiumPath(): string {
  const fromEnv = process.env["CHROMIUM_PATH"];
  if (fromEnv) return fromEnv;
  try {
    return execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("chromium is not installed: run `bash scripts/install-test-deps.sh apt` (or set CHROMIUM_PATH)");
  }
}

/** HTML from Git: in the gMSA's description, so it is written to AD and compared against it. */
const GIT_HTML = `Service1 <b>batch</b> & "jobs" <i>'x'</i>`;
/** HTML put into AD by hand: it reaches the page as the drifted value of that description. */
const AD_HTML = `<img src=x onerror="document.title='owned'"><script>document.title='owned'</script>`;

const STALLED_GROUP = `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: gmsa-ghost-hosts
spec:
  accountName: GMSA-Ghost-Hosts
  scope: Global
  members:
    - computer: NOSUCHPC
`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

interface Row {
  kind: string;
  name: string;
  state: string;
  text: string;
}

/** The resource rows as Chromium's DOM has them. */
async function rows(page: Page): Promise<Row[]> {
  const out: Row[] = [];
  for (const tr of await page.locator("#resource-table tr.resource").all())
    out.push({
      kind: (await tr.getAttribute("data-kind")) ?? "",
      name: (await tr.getAttribute("data-name")) ?? "",
      state: (await tr.getAttribute("data-state")) ?? "",
      text: await tr.innerText(),
    });
  return out;
}

/** The page's window, typed just enough (the test compiles without the DOM library). */
type PageWindow = { getComputedStyle(el: unknown): { backgroundColor: string } };

/** The computed background colour of an element, run in the page. */
const BACKGROUND = (el: unknown): string => (globalThis as unknown as PageWindow).getComputedStyle(el).backgroundColor;

describe("the status page in Chromium", () => {
  let dc: Dc;
  let repo: GitRepo;
  let workDir: string;
  let controller: RunningController;
  let browser: Browser;
  /** JavaScript off: the page must be complete without it. */
  let noJs: BrowserContext;
  /** The controller's notification webhook. */
  const receiver = new Receiver();

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
    noJs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1400, height: 900 } });
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
    repo = createGitRepo({ from: examples });
    // JSON is a YAML double-quoted scalar: the description is exactly GIT_HTML.
    repo.replace("service1/account.yaml", "Service1 batch jobs and Windows service", JSON.stringify(GIT_HTML));
    repo.commit("service1: a description with HTML in it");
    const flags = [
      "--ldap-url",
      dc.url,
      "--bind-dn",
      dc.adminDn,
      "--bind-password-file",
      dc.passwordFile,
      "--ownership-key-file",
      dc.ownershipKeyFile,
    ];
    let err = "";
    const code = await main(["apply", "--repo", repo.dir, ...flags, "--ca-file", dc.caFile], {
      stdout: () => undefined,
      stderr: (s) => void (err += s),
    });
    expect(err).toBe("");
    expect(code).toBe(0);
    // Now the hand edit in AD, and Git says: only report drift on this account, and add a stalled group.
    await dc.ldap("ldapmodify", [], {
      input: [
        `dn: CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`,
        "changetype: modify",
        "replace: description",
        `description:: ${Buffer.from(AD_HTML).toString("base64")}`,
        "",
      ].join("\n"),
    });
    repo.replace(
      "service1/account.yaml",
      "  accountName: MSA-service1\n",
      "  accountName: MSA-service1\n  mode: Observe\n",
    );
    repo.write("ghost/group.yaml", STALLED_GROUP);
    repo.commit("service1 observed only; a group for a computer that does not exist yet");

    const hook = `${await receiver.start()}/hooks/T0KEN-in-the-path`;
    workDir = mkdtempSync(join(tmpdir(), "gmsa-page-"));
    const config = loadConfig({
      flags: {
        "ldap-url": dc.url,
        "bind-dn": dc.adminDn,
        "bind-password-file": dc.passwordFile,
        "ownership-key-file": dc.ownershipKeyFile,
        "ca-file": dc.caFile,
        "git-url": repo.url,
        "work-dir": join(workDir, "clone"),
        listen: "127.0.0.1:0",
        interval: "2s",
        "log-level": "warn",
        "log-format": "json",
      },
      env: { GMSA_GITOPS_NOTIFY_URL: hook, GMSA_GITOPS_NOTIFY_FORMAT: "slack" },
    });
    if (!config.ok) throw new Error(config.errors.map((x) => `${x.source}: ${x.message}`).join("; "));
    controller = await startController(config.config, createLogger(config.config.log, process.stderr));
    await waitFor("the controller's first reconcile", async () =>
      (await fetch(`${controller.url}/readyz`)).status === 200 ? true : undefined,
    );
  });

  afterAll(async () => {
    await controller?.stop();
    await receiver.stop();
    await browser?.close();
    await dc?.stop();
    repo?.remove();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  async function open(path = "/"): Promise<Page> {
    const page = await noJs.newPage();
    const res = await page.goto(`${controller.url}${path}`);
    expect(res?.status()).toBe(200);
    return page;
  }

  it("shows every resource of the examples with its state, the revision in force and a fresh source", async () => {
    const page = await open();
    const got = await rows(page);
    expect(got.map((r) => `${r.kind}/${r.name}`).sort()).toEqual(
      [
        "ADGroup/gmsa-ghost-hosts",
        "ADGroup/gmsa-reports-hosts",
        "ADGroup/gmsa-service1-hosts",
        "GroupManagedServiceAccount/gmsa-reports",
        "GroupManagedServiceAccount/gmsa-sql",
        "GroupManagedServiceAccount/msa-service1",
        // No host transport here: listed all the same, Unknown, reason NoHostTransport.
        "HostBinding/server1-service1",
        "HostBinding/web1-reports",
        "HostBinding/web2-reports",
        "KdsRootKey/default",
      ].sort(),
    );
    expect(got.find((r) => r.name === "gmsa-reports")?.state).toBe("Ready");
    expect(got.find((r) => r.name === "gmsa-service1-hosts")?.state).toBe("Ready");
    expect(got.find((r) => r.name === "web1-reports")?.state).toBe("Unknown");
    expect(await page.textContent("#revision")).toContain(repo.head().slice(0, 12));
    expect(await page.getAttribute("#source-state", "data-stale")).toBe("false");
    expect(await page.getAttribute('meta[http-equiv="refresh"]', "content")).toMatch(/^\d+$/);
    await page.close();
  });

  it("shows a Stalled resource as Stalled, with its reason and message", async () => {
    const page = await open();
    const row = page.locator('tr.resource[data-name="gmsa-ghost-hosts"]');
    expect(await row.getAttribute("data-state")).toBe("Stalled");
    expect(await row.locator("td.state").innerText()).toContain("Stalled");
    expect(await row.locator("td.reason").innerText()).toBe("PrincipalNotFound");
    expect(await row.locator("td.headline").innerText()).toContain("NOSUCHPC");
    // Set apart by colour, not only by a word.
    const background = await row.evaluate(BACKGROUND);
    const readyBackground = await page.locator('tr.resource[data-name="gmsa-reports"]').evaluate(BACKGROUND);
    expect(background).not.toBe(readyBackground);
    expect(await page.textContent("#counts")).toMatch(/1 Stalled/);
    await page.close();
  });

  it("keeps HTML from Git and from AD as text: no element is injected", async () => {
    const page = await open();
    const row = page.locator('tr.resource[data-name="msa-service1"]');
    expect(await row.getAttribute("data-state")).toBe("NotReady");
    const drift = await row.locator("td.last-drift").innerText();
    expect(drift).toContain(AD_HTML);
    expect(drift).toContain(GIT_HTML);
    // Who made the hand edit, from the object's replication metadata, under the change.
    expect(await row.locator("td.last-drift .last-change").innerText()).toMatch(
      /^last changed \d{4}-\S+Z on DC1\.company\.local \(version \d+\)/,
    );
    const injected = await page.locator("img, script, #resource-table b, #resource-table i").count();
    expect(injected).toBe(0);
    expect(await page.title()).not.toContain("owned");
    await page.close();

    // With JavaScript on as well: nothing from the status runs.
    const js = await browser.newContext({ javaScriptEnabled: true });
    const jsPage = await js.newPage();
    await jsPage.goto(`${controller.url}/`);
    expect(await jsPage.title()).not.toContain("owned");
    expect(await jsPage.locator("img, script").count()).toBe(0);
    await js.close();
  });

  it("filters by kind and by not-Ready through the form, on the server, without JavaScript", async () => {
    const page = await open();
    await page.selectOption('select[name="kind"]', "ADGroup");
    await Promise.all([page.waitForURL(/kind=ADGroup/), page.click('button[type="submit"]')]);
    expect(new Set((await rows(page)).map((r) => r.kind))).toEqual(new Set(["ADGroup"]));
    expect(await rows(page)).toHaveLength(3);

    await page.check('input[name="notReady"]');
    await Promise.all([page.waitForURL(/notReady=1/), page.click('button[type="submit"]')]);
    expect((await rows(page)).map((r) => r.name)).toEqual(["gmsa-ghost-hosts"]);

    await page.selectOption('select[name="kind"]', "");
    await Promise.all([page.waitForURL(/kind=&/), page.click('button[type="submit"]')]);
    expect((await rows(page)).map((r) => r.name).sort()).toEqual([
      "gmsa-ghost-hosts",
      "msa-service1",
      "server1-service1",
      "web1-reports",
      "web2-reports",
    ]);
    await page.close();
  });

  it("links to /api/status and /metrics, and reflects a query parameter only as text", async () => {
    const page = await open(`/?kind=${encodeURIComponent(`"><script>document.title='owned'</script>`)}`);
    expect(await rows(page)).toHaveLength(0);
    expect(await page.locator("script").count()).toBe(0);
    await Promise.all([page.waitForURL(/\/api\/status$/), page.click('a[href="api/status"]')]);
    const json = JSON.parse(await page.innerText("body")) as { resources: unknown[] };
    expect(json.resources).toHaveLength(10);
    await page.goto(`${controller.url}/`);
    await Promise.all([page.waitForURL(/\/metrics$/), page.click('a[href="metrics"]')]);
    expect(await page.innerText("body")).toContain("gmsa_gitops_");
    await page.close();
  });

  it("gmsa-gitops status lists what the page lists, and exits 1 for the resources not Ready", async () => {
    let out = "";
    const code = await main(["status", "--url", controller.url], {
      stdout: (t) => void (out += t),
      stderr: () => undefined,
    });
    expect(code).toBe(1);
    const listed = out
      .trimEnd()
      .split("\n")
      .slice(1)
      .map((l) => l.split(/\s+/));
    const page = await open();
    expect(listed.map(([kind, name, , state]) => `${kind}/${name}/${state}`).sort()).toEqual(
      (await rows(page)).map((r) => `${r.kind}/${r.name}/${r.state}`).sort(),
    );
    await page.close();
  });

  it("notifies the webhook once that the group became Stalled, in Slack's format", async () => {
    const stalledGroup = (): string[] =>
      receiver.received.map((r) => String(r.body["text"])).filter((t) => t.includes("gmsa-ghost-hosts"));
    await waitFor("the Stalled notification", () => (stalledGroup().length > 0 ? true : undefined));
    expect(stalledGroup()[0]?.split("\n")[0]).toBe(
      "*gmsa-gitops: ADGroup gmsa-ghost-hosts is Stalled: it needs a change in Git or AD*",
    );
    // Further cycles (every 2 s) keep it Stalled: no second notification.
    const cycles = (await (await fetch(`${controller.url}/api/status`)).json()) as {
      controller: { lastReconcile: { startedAt: string } };
    };
    await waitFor("two more reconciles", async () => {
      const now = (await (await fetch(`${controller.url}/api/status`)).json()) as typeof cycles;
      return Date.parse(now.controller.lastReconcile.startedAt) >
        Date.parse(cycles.controller.lastReconcile.startedAt) + 3000
        ? true
        : undefined;
    });
    expect(stalledGroup()).toHaveLength(1);
  });

  it("notifies the webhook when drift made by hand in AD was corrected, with old → new", async () => {
    await dc.ldap("ldapmodify", [], {
      input: [
        `dn: CN=gMSA-Reports,CN=Managed Service Accounts,${dc.baseDn}`,
        "changetype: modify",
        "replace: description",
        "description: edited by hand",
        "",
      ].join("\n"),
    });
    const text = await waitFor("the DriftCorrected notification", () =>
      receiver.received.map((r) => String(r.body["text"])).find((t) => t.includes("gmsa-reports drifted")),
    );
    expect(text.split("\n")[0]).toBe(
      "*gmsa-gitops: GroupManagedServiceAccount gmsa-reports drifted and was corrected*",
    );
    expect(text).toContain("• *description*: edited by hand → Reporting web site (IIS app pool ReportsPool)");

    // The page keeps the evidence: who changed AD (the DC, from replication metadata) and how often.
    const page = await open();
    const row = (await rows(page)).find((r) => r.name === "gmsa-reports")!;
    expect(row.text).toMatch(/last changed \S+Z on DC1\.\S+ \(version \d+\)/);
    expect(row.text).toMatch(/corrected 1 time, first .* ago/);
    await page.close();
  });

  it("keeps a screenshot of the page when GMSA_GITOPS_SCREENSHOT names a file", async () => {
    const page = await open();
    const buffer = await page.screenshot({ fullPage: true });
    expect(buffer.subarray(1, 4).toString("latin1")).toBe("PNG");
    const target = process.env["GMSA_GITOPS_SCREENSHOT"];
    if (target) await page.screenshot({ fullPage: true, path: target });
    await page.close();
  });
});

describe("the status page with a status from elsewhere", () => {
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
    const hostile = `<img src=x onerror="document.title='owned'">`;
    server = await startServer({
      address: "127.0.0.1:0",
      metrics: createMetricsRecorder(),
      status: {
        ready: () => true,
        // Names the schema would refuse: the page must not rely on validation to stay safe.
        status: () => ({
          controller: {
            source: {
              url: "https://git.company.local/ad/gmsa.git",
              revision: "0123456789abcdef0123456789abcdef01234567",
              lastFetchedAt: new Date().toISOString(),
              lastFetchError: `connect ECONNREFUSED ${hostile}`,
              rejected: null,
            },
            mode: "enforce",
            lastReconcile: null,
            kdsRootKey: null,
          },
          resources: [
            {
              kind: "HostBinding",
              name: hostile,
              dn: null,
              source: { file: `${hostile}.yaml`, line: 3 },
              conditions: [
                {
                  type: "Ready",
                  status: "False",
                  reason: "RetryingAfterFailure",
                  message: hostile,
                  lastTransitionTime: null,
                },
              ],
              drift: [],
              changes: [],
              observeOnly: false,
              lastAppliedRevision: null,
              lastObservedAt: new Date().toISOString(),
              host: { name: `WEB1${hostile}`, reachable: false, retrievable: "pending" },
            },
          ],
        }),
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
  });

  it("shows a stale source and a hostile name as text, and the host's retrievability", async () => {
    const context = await browser.newContext({ javaScriptEnabled: true });
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    expect(await page.getAttribute("#source-state", "data-stale")).toBe("true");
    expect(await page.innerText("#source-state")).toContain("ECONNREFUSED <img");
    expect(await page.locator("img, script").count()).toBe(0);
    expect(await page.title()).not.toContain("owned");
    const name = await page.locator("tr.resource").getAttribute("data-name");
    expect(name).toBe(`<img src=x onerror="document.title='owned'">`);
    expect(await page.locator("tr.host td.retrievable").innerText()).toBe("pending");
    await context.close();
  });
});
