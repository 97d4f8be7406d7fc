/**
 * Large response bodies written in pieces: at 50,000 resources `/api/status` is about 85 MiB of
 * JSON and a scrape about 19 MiB of text, and building either as one string (then one Buffer of
 * it) cost the process more than the rest of its working set at its peak (docs/benchmarks.md).
 */
import type { ServerResponse } from "node:http";

/** Pieces are joined up to about this many characters before they are written. */
const CHUNK_CHARS = 64 * 1024;

/**
 * The text of `JSON.stringify(value)`, exactly, in pieces of about 64 KiB: objects and arrays
 * down to `depth` levels are walked (so a long array is never one string), anything deeper is
 * stringified whole. Values with `toJSON` (Dates) are stringified whole at any depth, as
 * JSON.stringify would call it.
 */
export function* jsonChunks(value: unknown, depth = 2): Generator<string> {
  let buffer = "";
  function* walk(v: unknown, level: number): Generator<string> {
    const container = typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON !== "function";
    if (!container || level >= depth) {
      // A top-level value JSON cannot represent (undefined, a function) is left out by the caller.
      buffer += JSON.stringify(v) ?? "null";
    } else if (Array.isArray(v)) {
      buffer += "[";
      for (let i = 0; i < v.length; i++) {
        if (i > 0) buffer += ",";
        yield* walk(v[i], level + 1);
      }
      buffer += "]";
    } else {
      buffer += "{";
      let first = true;
      for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
        // JSON.stringify leaves out properties whose value it cannot represent.
        if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
        buffer += `${first ? "" : ","}${JSON.stringify(key)}:`;
        first = false;
        yield* walk(item, level + 1);
      }
      buffer += "}";
    }
    if (buffer.length >= CHUNK_CHARS) {
      yield buffer;
      buffer = "";
    }
  }
  yield* walk(value, 0);
  if (buffer !== "") yield buffer;
}

/**
 * Sends a 200 (or `status`) whose body is `chunks`, written as they come with chunked transfer
 * encoding, waiting for the socket to drain before the next piece so that a slow client holds
 * one piece in memory, not the whole body. Stops early when the client goes away.
 */
export async function sendChunks(
  res: ServerResponse,
  status: number,
  contentType: string,
  chunks: Iterable<string> | AsyncIterable<string>,
): Promise<void> {
  res.writeHead(status, {
    "Content-Type": contentType,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  // HEAD: the headers only, without producing a body node:http would drop.
  if (res.req.method === "HEAD") {
    res.end();
    return;
  }
  for await (const chunk of chunks) {
    if (res.destroyed) return;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
  }
  res.end();
}
