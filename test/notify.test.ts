// Webhook notifications against a real local HTTP receiver: what is sent on which status
// transition, in each format, and how the notifier behaves when the receiver is slow, fails
// or is flooded. The webhook URL carries a token that must never reach a log line.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Notifier } from "../controller/notify/index.ts";
import type { NotificationFormat, NotifierOptions } from "../controller/notify/index.ts";
import type { Condition, ResourceStatus } from "../controller/reconcile/status.ts";
import { Receiver } from "./harness/receiver.ts";

const TOKEN = "XoXb-s3cret-T0KEN";

interface Line {
  level: "info" | "warn";
  obj: Record<string, unknown>;
  msg: string | undefined;
}

const t0 = Date.parse("2026-03-01T10:00:00Z");

function cond(type: Condition["type"], status: boolean, reason: Condition["reason"], message = ""): Condition {
  return { type, status: status ? "True" : "False", reason, message, lastTransitionTime: new Date(t0).toISOString() };
}

function resource(name: string, conditions: Condition[], observedAt = t0, extra: Partial<ResourceStatus> = {}) {
  const status: ResourceStatus = {
    kind: "ADGroup",
    name,
    dn: `CN=${name},CN=Users,DC=company,DC=local`,
    source: { file: "groups.yaml", line: 7 },
    conditions,
    drift: [],
    changes: [],
    observeOnly: false,
    lastAppliedRevision: "0123456789abcdef0123456789abcdef01234567",
    lastObservedAt: new Date(observedAt).toISOString(),
    lastDrift: null,
    corrections: { count: 0, since: null },
    nextAttemptAt: null,
    ...extra,
  };
  return status;
}

const ready = (name: string, at = t0) =>
  resource(name, [cond("Ready", true, "Reconciled", "in sync with Git"), cond("Stalled", false, "Reconciled")], at);
const stalled = (name: string, at = t0) =>
  resource(
    name,
    [
      cond("Ready", false, "PrincipalNotFound", "not found in AD: computer NOSUCHPC"),
      cond("Stalled", true, "PrincipalNotFound", "not found in AD: computer NOSUCHPC"),
    ],
    at,
  );
const failed = (name: string, at = t0) =>
  resource(
    name,
    [
      cond("Ready", false, "RetryingAfterFailure", "insufficient access rights"),
      cond("ApplyFailed", true, "ApplyFailed", "insufficient access rights"),
    ],
    at,
  );
const corrected = (name: string, at = t0) =>
  resource(
    name,
    [
      cond("Ready", true, "DriftCorrected", "drift corrected: attribute"),
      cond("DriftDetected", true, "DriftCorrected", "attribute"),
    ],
    at,
    {
      drift: ["attribute"],
      changes: [
        { attribute: "description", from: "<b>edited by hand</b> & more", to: "Computers for service1" },
        { attribute: "info", from: "see [here](https://evil.example)", to: undefined },
      ],
    },
  );

describe("webhook notifications", () => {
  const receiver = new Receiver();
  let base: string;
  let lines: Line[];
  let now: number;

  beforeAll(async () => {
    base = await receiver.start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    receiver.respond = (res) => res.writeHead(200).end("ok");
    lines = [];
    now = t0;
  });

  function notifier(options: Partial<NotifierOptions> = {}): Notifier {
    return new Notifier({
      url: `${base}/hooks/services/${TOKEN}?token=${TOKEN}`,
      format: "json",
      logger: {
        info: (obj, msg) => void lines.push({ level: "info", obj: obj as Record<string, unknown>, msg }),
        warn: (obj, msg) => void lines.push({ level: "warn", obj: obj as Record<string, unknown>, msg }),
      },
      now: () => new Date(now),
      ...options,
    });
  }

  const noToken = (): void => expect(JSON.stringify(lines)).not.toContain(TOKEN);

  it("posts once when a resource becomes Stalled, not again while it stays Stalled", async () => {
    const n = notifier();
    n.observe(undefined, ready("gmsa-a"));
    n.observe(ready("gmsa-a"), stalled("gmsa-a"));
    now += 60_000;
    n.observe(stalled("gmsa-a"), stalled("gmsa-a", now));
    await n.flush();
    expect(receiver.received).toHaveLength(1);
    const [got] = receiver.received;
    expect(got?.path).toBe(`/hooks/services/${TOKEN}?token=${TOKEN}`);
    expect(got?.contentType).toBe("application/json");
    expect(got?.body).toMatchObject({
      type: "gmsa-gitops.notification",
      version: 1,
      event: "Stalled",
      kind: "ADGroup",
      name: "gmsa-a",
      reason: "PrincipalNotFound",
      message: "not found in AD: computer NOSUCHPC",
      source: { file: "groups.yaml", line: 7 },
      summary: "gmsa-gitops: ADGroup gmsa-a is Stalled: it needs a change in Git or AD",
    });
    expect(lines.filter((l) => l.msg === "notify: sent")).toHaveLength(1);
    noToken();
  });

  it("posts when an apply fails and when drift was corrected, with the values old → new", async () => {
    const n = notifier();
    n.observe(ready("gmsa-b"), failed("gmsa-b"));
    n.observe(ready("gmsa-c"), corrected("gmsa-c", t0 + 1000));
    await n.flush();
    expect(receiver.received.map((r) => [r.body["event"], r.body["name"]])).toEqual([
      ["ApplyFailed", "gmsa-b"],
      ["DriftCorrected", "gmsa-c"],
    ]);
    expect(receiver.received[0]?.body["message"]).toBe("insufficient access rights");
    expect(receiver.received[1]?.body["changes"]).toEqual([
      { attribute: "description", from: "<b>edited by hand</b> & more", to: "Computers for service1" },
      { attribute: "info", from: "see [here](https://evil.example)", to: null },
    ]);
  });

  it.each<[NotificationFormat, (body: Record<string, unknown>) => void]>([
    [
      "slack",
      (body) => {
        expect(Object.keys(body)).toEqual(["text"]);
        const text = body["text"] as string;
        expect(text.split("\n")[0]).toBe("*gmsa-gitops: ADGroup gmsa-d drifted and was corrected*");
        // Slack's three control characters escaped, so AD's value cannot become a link or a mention.
        expect(text).toContain("&lt;b&gt;edited by hand&lt;/b&gt; &amp; more → Computers for service1");
      },
    ],
    [
      "teams",
      (body) => {
        expect(body["type"]).toBe("message");
        const [attachment] = body["attachments"] as { contentType: string; content: Record<string, unknown> }[];
        expect(attachment?.contentType).toBe("application/vnd.microsoft.card.adaptive");
        expect(attachment?.content).toMatchObject({ type: "AdaptiveCard", version: "1.4" });
        const [title, facts] = attachment?.content["body"] as Record<string, unknown>[];
        expect(title).toMatchObject({
          type: "TextBlock",
          text: "gmsa-gitops: ADGroup gmsa-d drifted and was corrected",
        });
        expect(facts?.["facts"]).toContainEqual({
          title: "description",
          value: "<b>edited by hand</b> & more → Computers for service1",
        });
        // A Markdown link from AD stays text.
        expect(facts?.["facts"]).toContainEqual({
          title: "info",
          value: "see [here]\u200b(https://evil.example) → (none)",
        });
      },
    ],
  ])("speaks %s", async (format, check) => {
    const n = notifier({ format });
    n.observe(ready("gmsa-d"), corrected("gmsa-d", t0 + 1000));
    await n.flush();
    expect(receiver.received).toHaveLength(1);
    check(receiver.received[0]!.body);
  });

  it("holds back a flapping resource per resource and event, and says how many were held back", async () => {
    const n = notifier({ perResourceIntervalMs: 10 * 60_000 });
    for (let i = 0; i < 4; i++) {
      n.observe(ready("gmsa-e"), stalled("gmsa-e"));
      now += 60_000;
    }
    n.observe(ready("gmsa-f"), stalled("gmsa-f"));
    await n.flush();
    expect(receiver.received.map((r) => r.body["name"])).toEqual(["gmsa-e", "gmsa-f"]);
    now = t0 + 11 * 60_000;
    n.observe(ready("gmsa-e"), stalled("gmsa-e"));
    await n.flush();
    expect(receiver.received.map((r) => [r.body["name"], r.body["suppressedBefore"]])).toEqual([
      ["gmsa-e", 0],
      ["gmsa-f", 0],
      ["gmsa-e", 3],
    ]);
  });

  it("caps notifications per minute in all, dropping and logging the rest", async () => {
    const n = notifier({ maxPerMinute: 3 });
    for (let i = 0; i < 5; i++) n.observe(ready(`gmsa-g${i}`), stalled(`gmsa-g${i}`));
    await n.flush();
    expect(receiver.received).toHaveLength(3);
    expect(lines.filter((l) => l.msg === "notify: notification dropped").map((l) => l.obj["why"])).toEqual([
      "rate limit",
      "rate limit",
    ]);
    now += 61_000;
    n.observe(ready("gmsa-g9"), stalled("gmsa-g9"));
    await n.flush();
    expect(receiver.received).toHaveLength(4);
  });

  it("never blocks or throws on a receiver that hangs: a bounded queue and a timeout per call", async () => {
    receiver.respond = () => undefined; // never answers
    const n = notifier({ timeoutMs: 300, maxQueue: 2 });
    const t = performance.now();
    for (let i = 0; i < 5; i++) n.observe(ready(`gmsa-h${i}`), stalled(`gmsa-h${i}`));
    expect(performance.now() - t).toBeLessThan(50);
    await n.close();
    // The first call is in flight while two wait; the other two are dropped.
    expect(receiver.received.length).toBe(3);
    const failures = lines.filter((l) => l.msg === "notify: webhook call failed");
    expect(failures.map((l) => l.obj["err"])).toEqual(Array(3).fill("no answer within 0.3 s"));
    expect(failures[0]?.obj["webhook"]).toBe(`${base}/…`);
    expect(lines.filter((l) => l.obj["why"] === "queue full")).toHaveLength(2);
    noToken();
  });

  it("does not hold up stopping: close() gives a hanging receiver a grace period, then drops the rest", async () => {
    receiver.respond = () => undefined; // never answers
    const n = notifier({ timeoutMs: 60_000 });
    for (let i = 0; i < 4; i++) n.observe(ready(`gmsa-k${i}`), stalled(`gmsa-k${i}`));
    const t = performance.now();
    await n.close(300);
    expect(performance.now() - t).toBeLessThan(5_000);
    expect(lines.find((l) => l.msg === "notify: stopping; notifications not sent")?.obj["dropped"]).toBe(4);
    // Closed: nothing more is taken.
    n.observe(ready("gmsa-k9"), stalled("gmsa-k9"));
    await n.flush();
    expect(receiver.received.map((r) => r.body["name"])).toEqual(["gmsa-k0"]);
    noToken();
  });

  it("logs a refused call or an unreachable receiver as a warning, without the token", async () => {
    receiver.respond = (res) => res.writeHead(500).end(`echo ${TOKEN}`);
    const n = notifier();
    n.observe(ready("gmsa-i"), stalled("gmsa-i"));
    await n.flush();
    expect(lines.find((l) => l.msg === "notify: webhook refused the notification")?.obj["status"]).toBe(500);

    const closed = new Receiver();
    const gone = await closed.start();
    await closed.stop();
    const m = notifier({ url: `${gone}/hooks/${TOKEN}` });
    m.observe(ready("gmsa-j"), stalled("gmsa-j"));
    await m.flush();
    expect(lines.find((l) => l.msg === "notify: webhook call failed")?.obj["err"]).toBe("ECONNREFUSED");
    noToken();
  });
});
