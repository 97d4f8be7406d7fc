/**
 * Credentials for a private Git remote, turned into the environment of the git processes.
 *
 * Nothing is written to disk and nothing goes on a command line (`ps` shows argv to every
 * user): ssh gets its key and pinned host keys through GIT_SSH_COMMAND, and https gets an
 * `Authorization` header through git's GIT_CONFIG_COUNT/KEY/VALUE variables, scoped to the
 * remote's origin so it is never sent to another host. The environment of a process is
 * readable only by its own user; `createGitSource` redacts every value of it from errors.
 */

/** How to authenticate to the Git remote. */
export type GitCredentials =
  | {
      readonly type: "ssh";
      /** Private key file (the deploy key); no passphrase. */
      readonly keyFile: string;
      /** known_hosts file pinning the server's host key: an unknown or changed key is refused. */
      readonly knownHostsFile: string;
    }
  | {
      readonly type: "https";
      /** The user name (for a token, whatever the forge expects; most accept any). */
      readonly username: string;
      /** The password or access token: a secret. */
      readonly password: string;
    };

/** POSIX shell single quoting: git runs GIT_SSH_COMMAND through the shell. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The extra git environment for `credentials` on `url` (an empty object without credentials).
 * The result goes to `createGitSource`'s `env`; it holds the secret, so it is never logged.
 */
export function gitCredentialEnv(url: string, credentials: GitCredentials | undefined): Record<string, string> {
  if (credentials === undefined) return {};
  if (credentials.type === "ssh") {
    const options = [
      // No user or system ssh_config, no agent, no other key: only what the settings say.
      "-F /dev/null",
      `-i ${shellQuote(credentials.keyFile)}`,
      "-o IdentitiesOnly=yes",
      "-o IdentityAgent=none",
      "-o BatchMode=yes",
      "-o StrictHostKeyChecking=yes",
      `-o UserKnownHostsFile=${shellQuote(credentials.knownHostsFile)}`,
      "-o GlobalKnownHostsFile=/dev/null",
    ];
    return { GIT_SSH_COMMAND: `ssh ${options.join(" ")}` };
  }
  const basic = Buffer.from(`${credentials.username}:${credentials.password}`, "utf8").toString("base64");
  return {
    GIT_CONFIG_COUNT: "1",
    // http.<url>.extraHeader applies to URLs under the remote's origin only.
    GIT_CONFIG_KEY_0: `http.${new URL(url).origin}/.extraHeader`,
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
  };
}
