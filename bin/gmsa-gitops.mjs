#!/usr/bin/env node
// Entry point for `gmsa-gitops`. Kept in plain JavaScript so that it also runs on an older
// Node: the controller itself is TypeScript run through Node's type stripping (Node >= 22.18; chokidar 6 needs 22.22).
// When the Node running this file is older, re-run with the Node 24 that the `node`
// devDependency installs in this checkout, so `npx gmsa-gitops` works on a Node 20 machine.
import { existsSync, mkdirSync, realpathSync } from "node:fs";
import module from "node:module";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(realpathSync(fileURLToPath(import.meta.url)));
const [major, minor] = process.versions.node.split(".").map(Number);
const supported = major > 22 || (major === 22 && minor >= 22);

/**
 * The per-user folder for Node's compile cache, or undefined when there is none to use. Node
 * keeps there the type-stripped JavaScript and V8's code for every module it loads, keyed by
 * the source's hash (an edited file is stripped again), so a warm start neither loads the
 * type stripper (16 MiB of WebAssembly memory) nor strips anything. Per user, never a shared
 * temporary folder, where another user could plant what this process runs. An explicit
 * NODE_COMPILE_CACHE or NODE_DISABLE_COMPILE_CACHE is left to Node.
 */
function compileCacheDir() {
  const env = process.env;
  if (env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  let base;
  if (process.platform === "win32") base = env.LOCALAPPDATA;
  else if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) base = env.XDG_CACHE_HOME;
  else {
    const home = homedir();
    if (home) base = process.platform === "darwin" ? join(home, "Library", "Caches") : join(home, ".cache");
  }
  if (!base || !isAbsolute(base)) return undefined;
  const dir = join(base, "gmsa-gitops", "compile-cache");
  try {
    // Created here rather than by Node, which spins on some paths it cannot create (under /proc).
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  } catch {
    return undefined; // no home, a read-only file system: run without the cache
  }
}

if (supported) {
  const cache = compileCacheDir();
  // A cache Node cannot write (read-only) is refused by Node itself, without a word: same run, slower start.
  if (cache) module.enableCompileCache?.(cache);
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
  // Imported here only: child_process brings net, stream and dgram, which a run on a supported Node never needs.
  const { spawnSync } = await import("node:child_process");
  const result = spawnSync(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
