/** Where to listen: a host (undefined: every interface) and a port (0: any free port). */
export interface ListenAddress {
  readonly host: string | undefined;
  readonly port: number;
}

/**
 * Parses a listen address as written in the controller config: `127.0.0.1:9090`, `:9090`
 * (every interface), `[::1]:9090`, `localhost:9090`. Port 0 asks the OS for a free port.
 *
 * @throws RangeError when the address has no port, or the port is not 0-65535.
 */
export function parseListenAddress(address: string): ListenAddress {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(address);
  const plain = /^([^:[\]]*):(\d+)$/.exec(address);
  const match = bracketed ?? plain;
  if (!match) throw new RangeError(`listen address "${address}" is not host:port, [ipv6]:port or :port`);
  const host = match[1] ?? "";
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`listen address "${address}" has a port outside 0-65535`);
  }
  return { host: host === "" ? undefined : host, port };
}

/**
 * The URL a local client uses to reach a server bound to `host:port`. A wildcard bind
 * (every interface) is reached on loopback; IPv6 literals are bracketed.
 */
export function localUrl(host: string | undefined, port: number): string {
  if (host === undefined || host === "0.0.0.0" || host === "::") return `http://127.0.0.1:${port}`;
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
