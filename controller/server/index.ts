/** The controller's HTTP server: metrics, health, readiness, status and the Git webhook. */
export {
  defaultMaxBodyBytes,
  startServer,
  type RunningServer,
  type ServerLogger,
  type ServerOptions,
  type StatusProvider,
  type WebhookOptions,
  type WebhookVerdict,
  type WebhookVerifier,
} from "./server.ts";
export { localUrl, parseListenAddress, type ListenAddress } from "./address.ts";
