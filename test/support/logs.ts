/** What a controller started in the test's own process logs, kept for the test to read. */
import { Writable } from "node:stream";

/** A stream to give the controller's logger, and everything written to it so far. */
export function logCapture(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString("utf8");
      done();
    },
  });
  return { stream, text: () => text };
}
