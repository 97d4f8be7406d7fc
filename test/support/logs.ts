/** What a controller started in the test's own process logs, kept for the test to read. */
import { Writable } from "node:stream";

/**
 * A stream to give the controller's logger, and everything written to it so far. `onWrite` sees
 * each write as it happens, inside the logging call (to act at an exact point of a cycle).
 */
export function logCapture(onWrite?: (chunk: string) => void): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const written = chunk.toString("utf8");
      text += written;
      onWrite?.(written);
      done();
    },
  });
  return { stream, text: () => text };
}
