/**
 * Command-line entry: argv → command. The only module that prints.
 * Returns the process exit code instead of calling process.exit, so tests can call it.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [command] = argv;
  process.stderr.write(`gmsa-gitops: unknown command ${command ?? "(none)"}\n`);
  return Promise.resolve(2);
}
