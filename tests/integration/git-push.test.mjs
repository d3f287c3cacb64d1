// sandbox_git_push against a real sshd on 127.0.0.1 (real keys, real known_hosts) and a
// local bare repository: pushes land on the remote, fast-forwards only, and every failure
// (unknown remote, nothing committed, wrong key, unknown or changed host key, rejection,
// unreachable host) says what happened. The user's HEAD, index and working tree never change.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  callTool,
  callToolError,
  connectStdio,
  git,
  makeGitRepo,
  onCleanup,
  skip,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();
const SSHD = "/usr/sbin/sshd";
if (!existsSync(SSHD)) skip(`needs ${SSHD} (openssh-server)`);

const dir = mkdtempSync(join(tmpdir(), "warren-it-push-"));
onCleanup(() => rmSync(dir, { recursive: true, force: true }));

function keygen(name, passphrase = "") {
  const path = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", path]);
  return { path, pub: readFileSync(`${path}.pub`, "utf8").trim() };
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function waitForPort(port, child, log) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log.text}`);
    const ok = await new Promise((r) => {
      const s = connect(port, "127.0.0.1", () => s.end(() => r(true)));
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on ${port}: ${log.text}`);
}

// ---- sshd on 127.0.0.1, key-only, its own host key and authorized_keys -------------------
const hostKey = keygen("host_key");
const clientKey = keygen("client_key");
const wrongKey = keygen("wrong_key");
const lockedKey = keygen("locked_key", "a passphrase");
writeFileSync(join(dir, "authorized_keys"), `${clientKey.pub}\n${lockedKey.pub}\n`, { mode: 0o600 });
const port = await freePort();
const config = join(dir, "sshd_config");
writeFileSync(
  config,
  [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${hostKey.path}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "StrictModes no",
    "UsePAM no",
    "UseDNS no",
    "PermitRootLogin prohibit-password",
    "",
  ].join("\n"),
);
mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
const sshd = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
const sshdLog = { text: "" };
sshd.stderr.on("data", (d) => (sshdLog.text = (sshdLog.text + d).slice(-16384)));
onCleanup(async () => {
  if (sshd.exitCode !== null) return;
  const exited = new Promise((r) => sshd.once("exit", r));
  sshd.kill("SIGTERM");
  await exited;
});
await waitForPort(port, sshd, sshdLog);

const hostEntry = `[127.0.0.1]:${port} ${hostKey.pub.split(" ").slice(0, 2).join(" ")}`;
const knownHosts = join(dir, "known_hosts");
writeFileSync(knownHosts, `${hostEntry}\n`);
const hashedKnownHosts = join(dir, "known_hosts_hashed");
writeFileSync(hashedKnownHosts, `${hostEntry}\n`);
execFileSync("ssh-keygen", ["-q", "-H", "-f", hashedKnownHosts], { stdio: "ignore" });
assert.match(readFileSync(hashedKnownHosts, "utf8"), /^\|1\|/);
const emptyKnownHosts = join(dir, "known_hosts_empty");
writeFileSync(emptyKnownHosts, "");
const otherKnownHosts = join(dir, "known_hosts_other");
writeFileSync(otherKnownHosts, `[127.0.0.1]:${port} ${wrongKey.pub.split(" ").slice(0, 2).join(" ")}\n`);

// ---- remotes and the user's repository ---------------------------------------------------
function bare(name) {
  const path = join(dir, name);
  execFileSync("git", ["init", "-q", "--bare", path]);
  return path;
}
const remoteBare = bare("remote.git");
const localBare = bare("local.git");
const guardedBare = bare("guarded.git");
writeFileSync(join(guardedBare, "hooks", "pre-receive"), "#!/bin/sh\necho 'policy says no' >&2\nexit 1\n", {
  mode: 0o755,
});
const sshUrl = (path) => `ssh://root@127.0.0.1:${port}${path}`;
const closedPort = await freePort();

const repo = makeGitRepo({ "README.md": "hello\n", "src/a.txt": "a\n" });
git(repo, "remote", "add", "origin", sshUrl(remoteBare));
git(repo, "remote", "add", "local", localBare);
git(repo, "remote", "add", "guarded", sshUrl(guardedBare));
git(repo, "remote", "add", "dead", `ssh://root@127.0.0.1:${closedPort}/nowhere.git`);
writeFileSync(join(repo, "README.md"), "hello\nuser's dirty edit\n");
const userHead = git(repo, "rev-parse", "HEAD");
const userStatus = git(repo, "status", "--porcelain");
const userIndex = readFileSync(join(repo, ".git", "index"));
const userConfig = readFileSync(join(repo, ".git", "config"));
function assertUserRepoUntouched() {
  assert.equal(git(repo, "rev-parse", "HEAD"), userHead);
  assert.equal(git(repo, "symbolic-ref", "HEAD"), "refs/heads/main");
  assert.equal(git(repo, "status", "--porcelain"), userStatus);
  assert.deepEqual(readFileSync(join(repo, ".git", "index")), userIndex);
  assert.deepEqual(readFileSync(join(repo, ".git", "config")), userConfig);
}
const remoteRev = (gitDir, ref) => git(gitDir, "rev-parse", "--verify", "-q", ref);

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const serverWith = (env) =>
  connectStdio({ stateDir, env: { WARREN_SSH_KNOWN_HOSTS: knownHosts, WARREN_SSH_KEY: clientKey.path, ...env } });
const client = await serverWith({});
const sb = await callTool(client, "sandbox_create", { name: "pusher", repo });
const sh = async (command) => {
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command });
  assert.equal(r.exit_code, 0, r.stderr);
};
const commit = (message) => callTool(client, "sandbox_git_commit", { id: sb.id, message });

test("nothing committed yet: nothing to push", async () => {
  assert.match(await callToolError(client, "sandbox_git_push", { id: sb.id }), /nothing to push.*sandbox_git_commit/);
});

test("a commit is pushed over SSH to warren/<name>", async () => {
  await sh("echo changed > src/a.txt && echo new > b.txt");
  const c = await commit("first");
  const p = await callTool(client, "sandbox_git_push", { id: sb.id });
  assert.deepEqual(p, { remote: "origin", url: sshUrl(remoteBare), branch: "warren/pusher", commit: c.commit, pushed: true });
  assert.equal(remoteRev(remoteBare, "refs/heads/warren/pusher"), c.commit);
  assert.equal(git(remoteBare, "show", `${c.commit}:b.txt`), "new");
  assert.equal(git(repo, "rev-parse", "refs/remotes/origin/warren/pusher"), c.commit);
  assertUserRepoUntouched();
});

test("a second commit fast-forwards; pushing again changes nothing", async () => {
  const before = remoteRev(remoteBare, "refs/heads/warren/pusher");
  await sh("echo more >> b.txt");
  const c = await commit("second");
  assert.equal(c.parent, before);
  const p = await callTool(client, "sandbox_git_push", { id: sb.id, remote: "origin" });
  assert.equal(p.commit, c.commit);
  assert.equal(remoteRev(remoteBare, "refs/heads/warren/pusher"), c.commit);
  const again = await callTool(client, "sandbox_git_push", { id: sb.id });
  assert.equal(again.commit, c.commit);
  assert.equal(remoteRev(remoteBare, "refs/heads/warren/pusher"), c.commit);
  assertUserRepoUntouched();
});

test("a local-path remote and an explicit branch", async () => {
  const p = await callTool(client, "sandbox_git_push", { id: sb.id, remote: "local" });
  assert.equal(p.url, localBare);
  assert.equal(remoteRev(localBare, "refs/heads/warren/pusher"), p.commit);
  const other = await callTool(client, "sandbox_git_push", { id: sb.id, remote: "local", branch: "main" });
  assert.equal(other.commit, userHead);
  assert.equal(remoteRev(localBare, "refs/heads/main"), userHead);
  assertUserRepoUntouched();
});

test("a hashed known_hosts entry is accepted", async () => {
  const hashed = await serverWith({ WARREN_SSH_KNOWN_HOSTS: hashedKnownHosts });
  const p = await callTool(hashed, "sandbox_git_push", { id: sb.id });
  assert.equal(p.commit, remoteRev(remoteBare, "refs/heads/warren/pusher"));
  await hashed.close();
});

test("unknown remote, bad branch, unreachable host", async () => {
  const unknown = await callToolError(client, "sandbox_git_push", { id: sb.id, remote: "nope" });
  assert.match(unknown, /no remote 'nope' in .*; remotes: .*\borigin\b/);
  assert.match(unknown, /\blocal\b/);
  assert.match(await callToolError(client, "sandbox_git_push", { id: sb.id, branch: "bad..name" }), /not a valid branch name/);
  const dead = await callToolError(client, "sandbox_git_push", { id: sb.id, remote: "dead" });
  assert.match(dead, new RegExp(`cannot reach 127\\.0\\.0\\.1 port ${closedPort}`));
  assertUserRepoUntouched();
});

test("a key the server does not accept: the error names what was tried", async () => {
  const wrong = await serverWith({ WARREN_SSH_KEY: wrongKey.path });
  const msg = await callToolError(wrong, "sandbox_git_push", { id: sb.id });
  assert.match(msg, /authentication .*failed/i);
  assert.match(msg, new RegExp(`tried: key ${wrongKey.path}`));
  assert.doesNotMatch(msg, /PRIVATE KEY|AAAA/);
  await wrong.close();
  const locked = await serverWith({ WARREN_SSH_KEY: lockedKey.path });
  assert.match(await callToolError(locked, "sandbox_git_push", { id: sb.id }), /passphrase-protected/);
  await locked.close();
});

test("an unknown host key is refused; a changed one loudly", async () => {
  const empty = await serverWith({ WARREN_SSH_KNOWN_HOSTS: emptyKnownHosts });
  const msg = await callToolError(empty, "sandbox_git_push", { id: sb.id });
  assert.match(msg, new RegExp(`unknown SSH host \\[127\\.0\\.0\\.1\\]:${port}`));
  assert.match(msg, new RegExp(`ssh-keyscan -p ${port} 127\\.0\\.0\\.1 >> ${emptyKnownHosts}`));
  assert.match(msg, /SHA256:/);
  await empty.close();
  const other = await serverWith({ WARREN_SSH_KNOWN_HOSTS: otherKnownHosts });
  assert.match(await callToolError(other, "sandbox_git_push", { id: sb.id }), /HOST KEY MISMATCH.*man-in-the-middle/);
  await other.close();
});

test("a non-fast-forward push is rejected and the remote keeps its commit", async () => {
  const remoteHead = remoteRev(remoteBare, "refs/heads/warren/pusher");
  const tree = git(remoteBare, "rev-parse", `${remoteHead}^{tree}`);
  const theirs = git(remoteBare, "commit-tree", tree, "-p", remoteHead, "-m", "someone else's commit");
  git(remoteBare, "update-ref", "refs/heads/warren/pusher", theirs);
  await sh("echo third >> b.txt");
  await commit("third");
  const msg = await callToolError(client, "sandbox_git_push", { id: sb.id });
  assert.match(msg, /rejected \(non-fast-forward\).*has commits that the branch warren\/pusher lacks/);
  assert.equal(remoteRev(remoteBare, "refs/heads/warren/pusher"), theirs);
  assertUserRepoUntouched();
});

test("a server-side rejection carries the server's reason", async () => {
  const msg = await callToolError(client, "sandbox_git_push", { id: sb.id, remote: "guarded" });
  assert.match(msg, /push rejected: the remote rejected refs\/heads\/warren\/pusher: .*declined/);
  assert.equal(git(guardedBare, "for-each-ref", "refs/heads/"), "");
  assertUserRepoUntouched();
});

test("a sandbox without a repository cannot push", async () => {
  const plain = await callTool(client, "sandbox_create", { name: "nopush" });
  assert.match(await callToolError(client, "sandbox_git_push", { id: plain.id }), /not created from a git repository/);
  await callTool(client, "sandbox_destroy", { id: plain.id });
  await callTool(client, "sandbox_destroy", { id: sb.id });
});
