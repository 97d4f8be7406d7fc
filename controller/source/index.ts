/**
 * controller/source: where desired state comes from. A Git branch (`createGitSource`) or a
 * local directory (`createLocalSource`) becomes a `Snapshot` of manifest bytes; webhooks
 * (`verifyWebhook`) ask for a look now. When to look is reconcile/schedule.ts's business.
 */
export { gitCredentialEnv } from "./credentials.ts";
export type { GitCredentials } from "./credentials.ts";
export { SourceError, fetchFailureReason, hideSecrets, redact } from "./errors.ts";
export type { SourceErrorInit, SourceErrorStep, SourceErrorReason, SourceOutcome } from "./errors.ts";
export { createGitSource } from "./git.ts";
export type { GitSource, GitSourceOptions, VerifyOptions } from "./git.ts";
export { createLocalSource, localRevision } from "./local.ts";
export type { LocalSource, LocalWatch } from "./local.ts";
export { polledEvery } from "./polled.ts";
export type { PolledSource } from "./polled.ts";
export type { Snapshot, SnapshotFile } from "./snapshot.ts";
export { verifyWebhook } from "./webhook.ts";
export type { WebhookProvider, WebhookRequest, WebhookVerdict } from "./webhook.ts";
