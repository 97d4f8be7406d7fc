// The directory module's public surface: AD over LDAP (client), what it observes, and the pure
// codecs (SIDs, security descriptors, encryption types, group types, DNs and escaping, KDS keys,
// error mapping).
export * from "./account-control.ts";
export * from "./client.ts";
export * from "./dn.ts";
export * from "./encryption-types.ts";
export * from "./errors.ts";
export * from "./escape.ts";
export * from "./group-type.ts";
export * from "./kds.ts";
export * from "./observed.ts";
export * from "./ownership.ts";
export * from "./replication.ts";
export * from "./security-descriptor.ts";
export * from "./sid.ts";
