// Warm pools (--pool IMAGE=N): a create is served by a started sandbox, which takes the
// create's repo (a git working tree on branch warren/<name>), name, env and ttl and is then
// indistinguishable from a fresh one; pooled sandboxes are not listed, sandbox_list reports
// the pool, which refills; a new server adopts the pool's sandboxes, a second one at the
// same time leaves them alone; --pool IMAGE=0 removes them. One pooled QEMU VM (TCG here) shows the same on a VM.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  callToolError,
  connectStdio,
  git,
  makeGitRepo,
  sandboxProcesses,
  skip,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
  warrenBinary,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const pools = async (client) => (await callTool(client, "sandbox_list")).pools;
const poolReady = (client, n) =>
  waitFor(`a pool of ${n} ready`, async () => (await pools(client))[0].ready === n, 60_000);

let client = await connectStdio({ stateDir, args: ["--pool", "host=2"] });
const repo = makeGitRepo({ "README.md": "hello\n", "src/app.py": "print('hi')\n" });
const head = git(repo, "rev-parse", "HEAD").trim();
const sh = async (id, command) => {
  const r = await callTool(client, "sandbox_exec", { id, command, timeout_seconds: 120 });
  assert.equal(r.exit_code, 0, `${command}: ${r.stderr}${r.stdout}`);
  return r.stdout;
};

test("the pool fills; pooled sandboxes are reported as a pool, not listed", async () => {
  await poolReady(client, 2);
  const list = await callTool(client, "sandbox_list");
  assert.deepEqual(list.sandboxes, []);
  assert.deepEqual(list.pools, [{ image: "host", backend: "jail", size: 2, ready: 2, filling: false, error: null }]);
  assert.equal(sandboxProcesses(stateDir).length >= 2, true, "two pooled jails run");
});

let sb;
test("a create claims a pooled sandbox and attaches the repo, name, env and ttl", async () => {
  const pidsBefore = new Set(sandboxProcesses(stateDir));
  sb = await callTool(client, "sandbox_create", { name: "claimed", repo, env: { GREETING: "hi" }, ttl_seconds: 3600 });
  assert.equal(sb.name, "claimed");
  assert.equal(sb.commit, head);
  assert.equal(sb.ttl_seconds, 3600);
  assert.ok(pidsBefore.has(sb.pid), "the sandbox is one of the pool's, already running");
  assert.equal(await sh(sb.id, "hostname; cat /etc/hostname; grep -c claimed /etc/hosts"), "claimed\nclaimed\n1\n");
  assert.equal(await sh(sb.id, "echo $GREETING; cat README.md src/app.py"), "hi\nhello\nprint('hi')\n");
  assert.equal(await sh(sb.id, "git branch --show-current; git status --porcelain; git log --format=%H"), `warren/claimed\n${head}\n`);
  // The user's objects are there read-only, as on a fresh sandbox.
  assert.match(await sh(sb.id, "findmnt -n -o OPTIONS /workspace/.git/repo-objects"), /^ro,/);
  const list = await callTool(client, "sandbox_list");
  assert.deepEqual(list.sandboxes.map((s) => s.name), ["claimed"]);
});

test("git inside the claimed sandbox and sandbox_git_commit land on warren/<name>", async () => {
  await sh(sb.id, "echo more >> README.md && git commit -qam 'inside' && echo new > new.txt");
  const c = await callTool(client, "sandbox_git_commit", { id: sb.id, message: "the rest" });
  assert.equal(c.branch, "warren/claimed");
  assert.equal(git(repo, "log", "--format=%s", "warren/claimed").trim(), "the rest\ninside\ninitial");
  assert.equal(git(repo, "status", "--porcelain").trim(), "", "the user's worktree is untouched");
});

test("the pool refills after a claim", async () => {
  await poolReady(client, 2);
});

test("a claimed sandbox survives pause, resume and a restart of its files", async () => {
  await callTool(client, "sandbox_pause", { id: sb.id });
  assert.equal(await sh(sb.id, "cat new.txt"), "new\n");
  await callTool(client, "sandbox_snapshot", { id: sb.id, name: "claimed-snap" });
  // The snapshot rebooted the sandbox from its row: the normal layout, same files.
  assert.equal(await sh(sb.id, "hostname; cat new.txt; git log -1 --format=%s"), "claimed\nnew\nthe rest\n");
});

test("creates the pool cannot serve are created afresh; names still collide", async () => {
  const big = await callTool(client, "sandbox_create", { name: "big", memory_mib: 1024 });
  assert.equal(big.memory.configured_mib, 1024);
  assert.equal((await pools(client))[0].ready, 2, "the pool was not used");
  const err = await callToolError(client, "sandbox_create", { name: "claimed" });
  assert.match(err, /already exists/);
  const bad = await callToolError(client, "sandbox_create", { name: "badrepo", repo: "/nonexistent/repo" });
  assert.match(bad, /nonexistent/);
  assert.equal((await pools(client))[0].ready, 2, "a bad request costs no pooled sandbox");
  await callTool(client, "sandbox_destroy", { id: big.id });
});

test("a pooled sandbox that died is replaced, and the create still succeeds", async () => {
  const mine = new Set((await callTool(client, "sandbox_list")).sandboxes.map((s) => s.pid));
  const pooled = sandboxProcesses(stateDir).filter((p) => !mine.has(p));
  assert.equal(pooled.length, 2);
  for (const pid of pooled) process.kill(pid, "SIGKILL");
  await waitFor("the pooled jails gone", () => pooled.every((p) => !existsSync(`/proc/${p}`)));
  const fresh = await callTool(client, "sandbox_create", { name: "after-kill" });
  assert.equal(await sh(fresh.id, "hostname"), "after-kill\n");
  await poolReady(client, 2);
  await callTool(client, "sandbox_destroy", { id: fresh.id });
});

let adopted;
test("a new server adopts the pool's sandboxes; --pool with a bad value is refused", async () => {
  const before = new Set(sandboxProcesses(stateDir));
  await client.close();
  client = await connectStdio({ stateDir, args: ["--pool", "host=2"] });
  const p = await pools(client);
  assert.equal(p[0].ready, 2, "adopted at start, no boot needed");
  adopted = await callTool(client, "sandbox_create", { name: "adopted" });
  assert.ok(before.has(adopted.pid));
  for (const bad of ["host", "host=x", "=2", "host=100000"]) {
    const r = spawnSync(warrenBinary(), ["mcp", "--backend", "jail", "--state-dir", stateDir, "--pool", bad], {
      input: "",
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.notEqual(r.status, 0, `--pool ${bad} was accepted`);
    assert.match(r.stderr, /--pool expects IMAGE=N/);
  }
});

test("a second warren with the same --pool on the state directory leaves the pool alone", async () => {
  const before = sandboxProcesses(stateDir).length;
  const second = await connectStdio({ stateDir, args: ["--pool", "host=2"] });
  const p = await pools(second);
  assert.equal(p[0].ready, 0);
  assert.match(p[0].error, /kept by another warren process/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(sandboxProcesses(stateDir).length, before, "the second server started sandboxes");
  // Its creates are fresh ones; the owner's pool is untouched.
  const fresh = await callTool(second, "sandbox_create", { name: "from-second" });
  assert.equal((await pools(client))[0].ready, 2);
  await callTool(second, "sandbox_destroy", { id: fresh.id });
  await second.close();
});

test("--pool host=0 removes the pool's sandboxes; the claimed ones stay", async () => {
  await client.close();
  client = await connectStdio({ stateDir, args: ["--pool", "host=0"] });
  const kept = new Set((await callTool(client, "sandbox_list")).sandboxes.map((s) => s.pid));
  assert.equal(kept.size, 2);
  await waitFor("only the claimed sandboxes run", () => {
    const pids = sandboxProcesses(stateDir);
    return pids.length === kept.size && pids.every((p) => kept.has(p));
  }, 60_000);
  const names = (await callTool(client, "sandbox_list")).sandboxes.map((s) => s.name).sort();
  assert.deepEqual(names, ["adopted", "claimed"]);
});

const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
const qemuHere = existsSync(join(guestDir, "vmlinuz")) && existsSync("/usr/lib/qemu/virtiofsd");
test("qemu: a pooled VM takes the repo and name when claimed", async () => {
  if (!qemuHere) skip("no guest kernel or virtiofsd");
  const vmState = tempStateDir();
  sweepSandboxesAtEnd(vmState);
  const vm = await connectStdio({ stateDir: vmState, args: ["--backend", "qemu", "--pool", "host=1"] });
  await waitFor("a pooled VM ready", async () => (await pools(vm))[0].ready === 1, 180_000);
  const v = await callTool(vm, "sandbox_create", { name: "vm-claimed", repo });
  const r = await callTool(vm, "sandbox_exec", {
    id: v.id,
    command: "hostname; cat README.md; git branch --show-current; echo w > written.txt",
    timeout_seconds: 120,
  });
  assert.equal(r.stdout, "vm-claimed\nhello\nwarren/vm-claimed\n", r.stderr);
  // The write went to the sandbox's workspace upper on the host, not to the pool's share.
  assert.equal(readFileSync(join(vmState, "sandboxes", v.id, "disk/workspace/upper/written.txt"), "utf8"), "w\n");
  await callTool(vm, "sandbox_destroy", { id: v.id });
  // The pool refills; a server stopped mid-boot would leave that VM to the next one.
  await waitFor("the pool refilled", async () => (await pools(vm))[0].ready === 1, 180_000);
  await vm.close();
  const d = await connectStdio({ stateDir: vmState, args: ["--backend", "qemu", "--pool", "host=0"] });
  await waitFor("the pooled VM gone", async () => {
    const ps = spawnSync("pgrep", ["-f", `qemu-system.*${vmState}`]).stdout.toString().trim();
    return ps === "";
  }, 60_000);
  await d.close();
}, { timeoutMs: 400_000 });
