import { describe, expect, it } from "vitest";
import { localUrl, parseListenAddress } from "./address.ts";

describe("parseListenAddress", () => {
  it.each([
    ["127.0.0.1:9090", { host: "127.0.0.1", port: 9090 }],
    [":9090", { host: undefined, port: 9090 }],
    ["[::1]:8080", { host: "::1", port: 8080 }],
    ["localhost:0", { host: "localhost", port: 0 }],
  ])("reads %s as host and port", (address, expected) => {
    expect(parseListenAddress(address)).toEqual(expected);
  });

  it.each(["9090", "127.0.0.1", "::1:9090", "host:65536", "host:-1", "host:port", ""])("refuses %j", (address) => {
    expect(() => parseListenAddress(address)).toThrow(RangeError);
  });
});

describe("localUrl", () => {
  it("reaches a wildcard bind on loopback", () => {
    expect(localUrl(undefined, 80)).toBe("http://127.0.0.1:80");
    expect(localUrl("0.0.0.0", 81)).toBe("http://127.0.0.1:81");
    expect(localUrl("::", 82)).toBe("http://127.0.0.1:82");
  });

  it("brackets an IPv6 literal", () => {
    expect(localUrl("::1", 9090)).toBe("http://[::1]:9090");
  });

  it("keeps a named host", () => {
    expect(localUrl("localhost", 9090)).toBe("http://localhost:9090");
  });
});
