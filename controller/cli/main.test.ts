import { describe, expect, it } from "vitest";
import type { Command, Io } from "./command.ts";
import { main, version } from "./main.ts";

function recorder(): Io & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout: (text: string) => void (io.out += text),
    stderr: (text: string) => void (io.err += text),
  };
  return io;
}

const calls: (readonly string[])[] = [];
const echo: Command = {
  name: "echo",
  summary: "records its arguments",
  usage: "Usage: gmsa-gitops echo [ARGS]\n",
  run: (args) => {
    calls.push(args);
    return Promise.resolve(args.length === 0 ? 0 : 1);
  },
};

describe("main", () => {
  it("dispatches to the command named first, with the remaining arguments, and returns its exit code", async () => {
    const io = recorder();
    expect(await main(["echo", "a", "b"], io, [echo])).toBe(1);
    expect(calls.at(-1)).toEqual(["a", "b"]);
  });

  it("prints the command list for --help and exits 0", async () => {
    const io = recorder();
    expect(await main(["--help"], io, [echo])).toBe(0);
    expect(io.out).toContain("  echo  records its arguments\n");
  });

  it("prints a command's usage for COMMAND --help without running it", async () => {
    const io = recorder();
    const before = calls.length;
    expect(await main(["echo", "--help"], io, [echo])).toBe(0);
    expect(io.out).toBe(echo.usage);
    expect(calls.length).toBe(before);
  });

  it("treats --help after -- as an argument", async () => {
    expect(await main(["echo", "--", "--help"], recorder(), [echo])).toBe(1);
    expect(calls.at(-1)).toEqual(["--", "--help"]);
  });

  it("prints the package version for --version", async () => {
    const io = recorder();
    expect(await main(["--version"], io)).toBe(0);
    expect(io.out).toBe(`gmsa-gitops ${version()}\n`);
    expect(version()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("exits 2 on an unknown command or none", async () => {
    const io = recorder();
    expect(await main(["frobnicate"], io, [echo])).toBe(2);
    expect(io.err).toBe('gmsa-gitops: unknown command "frobnicate"; run gmsa-gitops --help for the list\n');
    expect(await main([], recorder(), [echo])).toBe(2);
  });

  it("lists validate among the real commands", async () => {
    const io = recorder();
    await main(["--help"], io);
    expect(io.out).toMatch(/^ {2}validate +check a folder of manifests/m);
  });
});
