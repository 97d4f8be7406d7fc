import { defineConfig } from "vitest/config";

// Unit tests sit beside the code; integration tests (real Samba, git, sshd, pwsh) live in test/.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["controller/**/*.test.ts"] } },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
