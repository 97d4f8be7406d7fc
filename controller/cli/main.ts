/**
 * Command-line entry: argv → command. The only module that prints.
 * Returns the process exit code instead of calling process.exit, so tests can call it.
 */
import type { Command, Io, LazyCommand } from "./command.ts";
import { EXIT, version } from "./command.ts";

export { version } from "./command.ts";
import { COMMANDS } from "./commands.ts";
// color.ts, not config/index.ts: the settings table imports LDAP and YAML, which validate does not need.
import { colorWanted } from "../config/color.ts";

/** The process's own streams. */
const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  color: colorWanted(process.stdout.isTTY === true),
};

function help(commands: readonly Entry[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "Usage: gmsa-gitops COMMAND [OPTIONS]",
    "",
    "GitOps for Group Managed Service Accounts: keeps Active Directory and Windows hosts in line",
    "with the manifests in a Git repository.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Options:",
    "  -h, --help     show this help, or a command's help with COMMAND --help",
    "  -V, --version  print the version",
    "",
    "Exit codes: 0 success, 1 the command found problems, 2 usage error.",
    "",
  ].join("\n");
}

/** A command, or a table entry that loads it. */
type Entry = Command | LazyCommand;

function resolve(entry: Entry): Promise<Command> {
  return "load" in entry ? entry.load() : Promise.resolve(entry);
}

/**
 * Runs the command named by `argv[0]` with the rest of `argv` and resolves to its exit code.
 * `--help`/`-h` anywhere before `--` prints help instead of running; an unknown command is a
 * usage error (2).
 */
export async function main(
  argv: readonly string[],
  io: Io = processIo,
  commands: readonly Entry[] = COMMANDS,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(help(commands));
    return EXIT.usage;
  }
  if (name === "-h" || name === "--help" || name === "help") {
    const topic = name === "help" ? commands.find((c) => c.name === rest[0]) : undefined;
    io.stdout(topic ? (await resolve(topic)).usage : help(commands));
    return EXIT.ok;
  }
  if (name === "-V" || name === "--version" || name === "version") {
    io.stdout(`gmsa-gitops ${version()}\n`);
    return EXIT.ok;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.stderr(`gmsa-gitops: unknown command "${name}"; run gmsa-gitops --help for the list\n`);
    return EXIT.usage;
  }
  const command = await resolve(entry);
  const end = rest.indexOf("--");
  const options = end < 0 ? rest : rest.slice(0, end);
  if (options.includes("--help") || options.includes("-h")) {
    io.stdout(command.usage);
    return EXIT.ok;
  }
  return command.run(rest, io);
}
