// A local HTTP receiver for outbound webhooks: records every request's path, content type and
// JSON body, and answers as the test decides (200 by default; a test can make it fail or hang).
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the receiver got. */
export interface Received {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: Record<string, unknown>;
}

/** Records every POST; `respond` decides how it answers; `stop` drops even hanging requests. */
export class Receiver {
  readonly received: Received[] = [];
  respond: (res: ServerResponse) => void = (res) => res.writeHead(200).end("ok");
  readonly #server: Server;
  readonly #open = new Set<ServerResponse>();
  constructor() {
    this.#server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.received.push({
          path: req.url ?? "",
          contentType: req.headers["content-type"],
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
        });
        this.#open.add(res);
        res.on("close", () => this.#open.delete(res));
        this.respond(res);
      });
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    for (const res of this.#open) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
