import { describe, expect, it } from "vitest";
import { FilterParser } from "ldapts";
import { childDn, escapeDnValue, escapeFilterValue } from "./escape.ts";

describe("escapeFilterValue", () => {
  const table: { input: string; escaped: string }[] = [
    { input: "GMSA-Service1-Hosts", escaped: "GMSA-Service1-Hosts" },
    { input: "*", escaped: "\\2a" },
    { input: "*)(objectClass=*", escaped: "\\2a\\29\\28objectClass=\\2a" },
    { input: "admin)(|(adminDescription=*))", escaped: "admin\\29\\28|\\28adminDescription=\\2a\\29\\29" },
    { input: "back\\slash", escaped: "back\\5cslash" },
    { input: "\\2a", escaped: "\\5c2a" },
    { input: "nul\u0000byte", escaped: "nul\\00byte" },
    { input: "tab\tnewline\n", escaped: "tab\\09newline\\0a" },
    { input: "Müller 東京", escaped: "Müller 東京" },
    { input: "", escaped: "" },
  ];
  it.each(table)("$input becomes $escaped", ({ input, escaped }) => {
    expect(escapeFilterValue(input)).toBe(escaped);
  });

  it("an escaped hostile value parses back to one equality assertion holding the literal value", () => {
    const hostile = "x*)(|(objectClass=*)(cn=\\";
    const filter = FilterParser.parseString(`(sAMAccountName=${escapeFilterValue(hostile)})`);
    expect(filter.constructor.name).toBe("EqualityFilter");
    expect((filter as unknown as { value: string }).value).toBe(hostile);
  });

  it("bytes are escaped one hex pair each, as binary objectSid values must be", () => {
    expect(escapeFilterValue(Uint8Array.from([0x01, 0x05, 0x00, 0xff, 0x2a]))).toBe("\\01\\05\\00\\ff\\2a");
  });
});

describe("escapeDnValue", () => {
  const table: { input: string; escaped: string }[] = [
    { input: "MSA-service1", escaped: "MSA-service1" },
    { input: "Smith, John", escaped: "Smith\\, John" },
    { input: " leading", escaped: "\\ leading" },
    { input: "trailing ", escaped: "trailing\\ " },
    { input: " ", escaped: "\\ " },
    { input: "  ", escaped: "\\ \\ " },
    { input: "in  side", escaped: "in  side" },
    { input: "#hash", escaped: "\\#hash" },
    { input: "not#leading", escaped: "not#leading" },
    { input: 'a+b"c\\d<e>f;g=h', escaped: 'a\\+b\\"c\\\\d\\<e\\>f\\;g\\=h' },
    { input: "x,CN=Administrator,CN=Users", escaped: "x\\,CN\\=Administrator\\,CN\\=Users" },
    { input: "nul\u0000", escaped: "nul\\00" },
    { input: "Müller", escaped: "Müller" },
  ];
  it.each(table)("$input becomes $escaped", ({ input, escaped }) => {
    expect(escapeDnValue(input)).toBe(escaped);
  });
});

describe("childDn", () => {
  it("builds an escaped child DN under its parent", () => {
    expect(childDn("CN", "a,b", "CN=Users,DC=x")).toBe("CN=a\\,b,CN=Users,DC=x");
  });

  it("refuses an attribute type that could smuggle in more RDNs", () => {
    expect(() => childDn("CN=x,OU", "a", "DC=x")).toThrow(/attribute type/);
    expect(() => childDn("CN", "", "DC=x")).toThrow(/empty/);
  });
});
