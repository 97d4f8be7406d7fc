// Fails early, with a clear message, when npm scripts run on a Node that cannot run the
// controller (type stripping needs Node >= 22.18; chokidar 6 needs 22.22). Inside npm scripts the `node`
// devDependency puts Node 24 first on PATH, so this normally passes on a Node 20 machine.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 22)) {
  process.stderr.write(`Node.js ${process.version} is too old: need >= 22.22 (run \`npm install\` for Node 24).\n`);
  process.exit(1);
}
