import { describe, expect, it } from "vitest";
import { parseReplMetaDataXml } from "./replication.ts";

// The shape Windows DCs return for msDS-ReplAttributeMetaData / msDS-ReplValueMetaData
// (MS-ADTS 3.1.1.4.5.13 and .14); Samba returns neither (see docs/active-directory.md).
const attr = (name: string, version: number, time: string, dsa: string) =>
  `<DS_REPL_ATTR_META_DATA>\n\t<pszAttributeName>${name}</pszAttributeName>\n\t<dwVersion>${version}</dwVersion>\n\t<ftimeLastOriginatingChange>${time}</ftimeLastOriginatingChange>\n\t<uuidLastOriginatingDsaInvocationID>0f6e3b4e-9a2c-4b7e-8f4e-1a2b3c4d5e6f</uuidLastOriginatingDsaInvocationID>\n\t<usnOriginatingChange>20489</usnOriginatingChange>\n\t<usnLocalChange>20489</usnLocalChange>\n\t<pszLastOriginatingDsaDN>${dsa}</pszLastOriginatingDsaDN>\n</DS_REPL_ATTR_META_DATA>\n\u0000`;
const value = (name: string, version: number, time: string) =>
  `<DS_REPL_VALUE_META_DATA>\n\t<pszAttributeName>${name}</pszAttributeName>\n\t<pszObjectDn>CN=SERVER1,CN=Computers,DC=company,DC=local</pszObjectDn>\n\t<ftimeLastOriginatingChange>${time}</ftimeLastOriginatingChange>\n\t<dwVersion>${version}</dwVersion>\n\t<uuidLastOriginatingDsaInvocationID>0f6e3b4e-9a2c-4b7e-8f4e-1a2b3c4d5e6f</uuidLastOriginatingDsaInvocationID>\n</DS_REPL_VALUE_META_DATA>\n\u0000`;

describe("Windows replication metadata", () => {
  it("gives each reported attribute its time, version and originating DC; the newest member value wins", () => {
    const dsa =
      "CN=NTDS Settings,CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=company,DC=local";
    const history = parseReplMetaDataXml([
      attr("description", 3, "2026-11-30T05:24:24Z", dsa),
      attr("whenCreated", 1, "2026-11-01T00:00:00Z", dsa),
      value("member", 1, "2026-11-02T10:00:00Z"),
      value("member", 2, "2026-11-29T10:00:00Z"),
    ]);
    expect(history).toEqual([
      {
        attribute: "description",
        time: new Date("2026-11-30T05:24:24Z"),
        version: 3,
        invocationId: "0f6e3b4e-9a2c-4b7e-8f4e-1a2b3c4d5e6f",
        dsaDn: dsa,
        objectLevel: false,
      },
      {
        attribute: "member",
        time: new Date("2026-11-29T10:00:00Z"),
        version: 2,
        invocationId: "0f6e3b4e-9a2c-4b7e-8f4e-1a2b3c4d5e6f",
        dsaDn: undefined,
        objectLevel: false,
      },
    ]);
  });
});
