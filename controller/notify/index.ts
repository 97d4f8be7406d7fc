/** Outbound webhook notifications on Stalled, failed applies and corrected drift. */
export { Notifier, redactUrl, transitions, type NotifierOptions, type NotifyLogger } from "./notifier.ts";
export {
  headline,
  notificationBody,
  type Notification,
  type NotificationEvent,
  type NotificationFormat,
} from "./format.ts";
