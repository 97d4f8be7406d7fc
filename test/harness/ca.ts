// A self-signed CA certificate made with openssl, for tests that need a PEM file a client will
// load (a CA file setting) without a server that uses it.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

/**
 * Writes a fresh self-signed certificate and its key into `dir` (`ca.pem`, `ca.key`, valid one
 * day, subject CN=`name`) and returns the certificate's path.
 */
export function makeSelfSignedCa(dir: string, name: string): string {
  const cert = join(dir, "ca.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-days", "1"].concat([
      "-keyout",
      join(dir, "ca.key"),
      "-out",
      cert,
    ]),
    { stdio: "ignore" },
  );
  return cert;
}
