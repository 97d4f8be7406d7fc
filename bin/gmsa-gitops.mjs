#!/usr/bin/env node
// Entry point for `gmsa-gitops`. Kept in plain JavaScript so that it also runs on an older
// Node: the controller itself is TypeScript run through Node's type stripping (Node >= 22.18; chokidar 6 needs 22.22).
// When the Node running this file is older, re-run with the Node 24 that the `node`
// devDependency installs in this checkout, so `npx gmsa-gitops` works on a Node 20 machine.
import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(realpathSync(fileURLToPath(import.meta.url)));
const [major, minor] = process.versions.node.split(".").map(Number);
const supported = major > 22 || (major === 22 && minor >= 22);

if (supported) {
  const { main } = await import(join(here, "..", "controller", "cli", "main.ts"));
  process.exitCode = await main(process.argv.slice(2));
} else {
  const bundled = join(here, "..", "node_modules", "node", "bin", "node");
  if (!existsSync(bundled)) {
    process.stderr.write(
      `gmsa-gitops needs Node.js 22.22 or newer (this is ${process.version}); run \`npm install\` in the checkout to get Node 24.\n`,
    );
    process.exit(2);
  }
  const result = spawnSync(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
