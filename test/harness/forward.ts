// A byte pipe between a Unix socket and TCP, run as a helper process by samba.ts. A throwaway
// DC lives in its own network namespace (Samba's ports are fixed), so the test process cannot
// reach its 127.0.0.1:636; a Unix socket in the DC's folder is visible from both namespaces.
//
//   forward.ts unix-to-tcp SOCKET HOST PORT   listen on SOCKET, connect each client to HOST:PORT
//   forward.ts tcp-to-unix SOCKET PORT_FILE   listen on 127.0.0.1:<ephemeral>, connect to SOCKET;
//                                             writes the port to PORT_FILE once listening
//
// TLS passes through untouched, so a client of 127.0.0.1:<ephemeral> verifies the DC's
// certificate (SAN IP:127.0.0.1) exactly as if it talked to 127.0.0.1:636 directly.
import { rmSync, renameSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import type { Server, Socket } from "node:net";

function pipeBoth(client: Socket, upstream: Socket): void {
  client.pipe(upstream);
  upstream.pipe(client);
  // Either side failing or closing ends both: a half-dead pair would hang an LDAP client.
  const end = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", end).on("close", end);
  upstream.on("error", end).on("close", end);
}

function serve(server: Server, connect: () => Socket): void {
  server.on("connection", (client) => pipeBoth(client, connect()));
}

/** Exits when the process that started this helper is gone, so no forwarder outlives its DC. */
function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
  process.on("disconnect", () => process.exit(0));
}

const [mode, socketPath, a, b] = process.argv.slice(2);
exitWithParent();
if (mode === "unix-to-tcp" && socketPath && a && b) {
  rmSync(socketPath, { force: true });
  const server = createServer();
  serve(server, () => createConnection({ host: a, port: Number(b) }));
  server.listen(socketPath);
} else if (mode === "tcp-to-unix" && socketPath && a) {
  const server = createServer();
  serve(server, () => createConnection({ path: socketPath }));
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    // Written then renamed, so a reader never sees a half-written port.
    writeFileSync(`${a}.tmp`, String(address.port));
    renameSync(`${a}.tmp`, a);
  });
} else {
  process.stderr.write("usage: forward.ts unix-to-tcp SOCKET HOST PORT | tcp-to-unix SOCKET PORT_FILE\n");
  process.exit(2);
}
