// The qemu backend end to end, with one real VM (TCG where /dev/kvm is unusable): the guest
// kernel boots guest-init from the initramfs, root and /workspace come over virtiofs from
// the host's overlays, writes land in the sandbox's upper layer and never in the user's
// repository, and a VMM that dies mid-exec fails the exec (no hang), leaves the sandbox
// listed failed with its files, and leaves no process or mount of it behind. A second VM
// with network: true gets a NIC on QEMU's user-mode network, from a QEMU in a network
// namespace of its own: the host's loopback is not behind 10.0.2.2.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  buildDeb,
  callTool,
  connectStdio,
  git,
  makeGitRepo,
  onCleanup,
  processRuns,
  skip,
  skipUnlessRoot,
  tempStateDir,
  test,
  waitFor,
} from "./lib/harness.mjs";

skipUnlessRoot("the qemu backend needs root (virtiofsd)");
const onPath = (bin) =>
  (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => existsSync(join(d, bin)));
if (!onPath("qemu-system-x86_64")) skip("qemu-system-x86_64 is not installed");
if (!existsSync("/usr/lib/qemu/virtiofsd")) skip("/usr/lib/qemu/virtiofsd is not installed");
const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
if (!existsSync(join(guestDir, "vmlinuz"))) skip(`no guest kernel in ${guestDir} (run tools/build-guest-kernel.sh)`);

const BOOT_TIMEOUT_MS = 120_000;
// A sandbox's disk stays mounted on <state>/sandboxes/<id>/disk until it is destroyed;
// nothing else may be.
const mountedBesidesDisk = (dir) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
    .some((p) => (p === dir || p.startsWith(dir + "/")) && !/\/sandboxes\/[0-9a-f]{16}\/disk$/.test(p));
const stateDir = tempStateDir();
const repo = makeGitRepo({ "README.md": "qemu\n", "src/main.c": "int main(void) { return 0; }\n" });
const repoReadme = readFileSync(join(repo, "README.md"), "utf8");

// "--backend qemu" after the harness's "--backend jail": getopt keeps the last one.
const serverArgs = ["--backend", "qemu"];
// TCG unless told otherwise: on hosts where /dev/kvm is present but broken (nested PVM)
// the kernel hangs under KVM, and TCG is what CI has.
const env = { WARREN_GUEST_DIR: guestDir, WARREN_QEMU_ACCEL: process.env.WARREN_QEMU_ACCEL ?? "tcg" };
let client;
let sb;

// Live processes whose command line mentions the sandbox's directory: QEMU, the vmfs
// supervisor and its virtiofsds (their sockets and shares live there).
function sandboxProcesses(dir) {
  const pids = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || !processRuns(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(dir)) pids.push(Number(name));
    } catch {}
  }
  return pids;
}

// Last resort when a case fails half-way: no VM of this run may outlive it.
onCleanup(async () => {
  for (const pid of sandboxProcesses(join(stateDir, "sandboxes"))) {
    console.error(`cleanup: killing leftover process ${pid}`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
});

test("create a VM with a repo; exec sees the guest kernel and the repo", async () => {
  client = await connectStdio({ stateDir, args: serverArgs, env });
  const started = Date.now();
  sb = await callTool(client, "sandbox_create", { name: "vm", repo }, { timeout: BOOT_TIMEOUT_MS });
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "uname -r; cat /workspace/README.md; ls /workspace/src" }, { timeout: BOOT_TIMEOUT_MS });
  console.log(`boot to first exec: ${Date.now() - started} ms`);
  const [kernel, ...rest] = r.stdout.split("\n");
  const guestVersion = readFileSync(join(guestDir, "VERSION"), "utf8");
  assert.ok(kernel && guestVersion.includes(kernel.replace(/-cloud-amd64$/, "")), `guest kernel ${kernel} vs ${guestVersion}`);
  assert.notEqual(kernel, readFileSync("/proc/sys/kernel/osrelease", "utf8").trim());
  assert.equal(rest.join("\n"), `${repoReadme}main.c\n`);
  // network: false (the default): the NIC is there (every VM has one, so that sandbox_update
  // can switch modes), but QEMU's network namespace has nothing behind it: the gateway
  // (that namespace's loopback) refuses, nothing else answers.
  const nets = await callTool(client, "sandbox_exec", {
    id: sb.id,
    command: "ls /sys/class/net; bash -c '(exec 3<>/dev/tcp/10.0.2.2/80) 2>/dev/null && echo open || echo closed; " +
      "timeout 5 bash -c \"exec 3<>/dev/tcp/203.0.113.10/80\" 2>/dev/null && echo out || echo no way out'",
  });
  assert.equal(nets.stdout, "eth0\nlo\nclosed\nno way out\n");
}, { timeoutMs: BOOT_TIMEOUT_MS + 30_000 });

test("writes land in the sandbox's upper layer, not in the repo; list shows memory", async () => {
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "notes/new.txt", content: "from the host\n", create_dirs: true });
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "cat notes/new.txt && echo changed >> README.md && cat README.md" });
  assert.equal(r.stdout, `from the host\n${repoReadme}changed\n`);
  const f = await callTool(client, "sandbox_read_file", { id: sb.id, path: "README.md" });
  assert.equal(f.content, `${repoReadme}changed\n`);

  const upper = join(stateDir, "sandboxes", sb.id, "disk", "workspace", "upper");
  assert.equal(readFileSync(join(upper, "notes/new.txt"), "utf8"), "from the host\n");
  assert.equal(readFileSync(join(upper, "README.md"), "utf8"), `${repoReadme}changed\n`);
  assert.equal(readFileSync(join(repo, "README.md"), "utf8"), repoReadme);
  assert.equal(existsSync(join(repo, "notes")), false);

  const { sandboxes } = await callTool(client, "sandbox_list");
  const listed = sandboxes.find((s) => s.id === sb.id);
  assert.equal(listed.state, "running");
  assert.ok(listed.pid > 0 && processRuns(listed.pid));
  const memory = listed.memory?.usage_bytes;
  assert.ok(memory > 16 << 20, `memory in ${JSON.stringify(listed)}`);
  // Nothing of the VM's shares is mounted in the host's namespace (its disk is).
  assert.equal(mountedBesidesDisk(join(stateDir, "sandboxes", sb.id)), false);
});

test("the VM's root is copy-on-write over the host image: dpkg installs, /etc takes edits, the host does not change", async () => {
  const pkg = "warren-test-vm";
  const hostStatus = readFileSync("/var/lib/dpkg/status");
  await callTool(client, "sandbox_write_file", { id: sb.id, path: `/tmp/${pkg}.deb`, content: buildDeb(pkg), encoding: "base64" });
  const r = await callTool(client, "sandbox_exec", {
    id: sb.id,
    command: `dpkg -i /tmp/${pkg}.deb >/dev/null && cat /usr/share/${pkg}/hello && useradd -r -M svc && id -u svc >/dev/null && ` +
      "echo 203.0.113.9 vm.internal >> /etc/hosts && getent hosts vm.internal && test ! -e /etc/shadow && echo ok",
  }, { timeout: BOOT_TIMEOUT_MS });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.match(r.stdout, /^hello from a package\n203\.0\.113\.9\s+vm\.internal\nok\n$/);
  const upper = join(stateDir, "sandboxes", sb.id, "disk", "root", "upper");
  assert.ok(existsSync(join(upper, "usr/share", pkg, "hello")), "the package is not in the sandbox's upper");
  assert.equal(existsSync(`/usr/share/${pkg}`), false);
  assert.deepEqual(readFileSync("/var/lib/dpkg/status"), hostStatus);
});

test("pause stops the VM (QMP stop), a call resumes it; git commit sees the VM's writes", async () => {
  const paused = await callTool(client, "sandbox_pause", { id: sb.id });
  assert.equal(paused.state, "paused");
  const status = execFileSync("sh", ["-c", `grep -q . /proc/${paused.pid}/status && echo alive`], { encoding: "utf8" });
  assert.match(status, /alive/);
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "echo thawed > thawed.txt && cat thawed.txt" });
  assert.equal(r.stdout, "thawed\n");
  const listed = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
  assert.equal(listed.state, "running");
  // git inside the VM: the repository's history through the read-only object share.
  const inner = await callTool(client, "sandbox_exec", {
    id: sb.id,
    command: "git log --format=%s && git -c user.name=vm -c user.email=vm@test commit -qm 'made in the VM' -- README.md && git status --porcelain",
  });
  assert.equal(inner.exit_code, 0, inner.stderr);
  assert.equal(inner.stdout, "initial\n?? notes/\n?? thawed.txt\n");
  const c = await callTool(client, "sandbox_git_commit", { id: sb.id, message: "from the VM" });
  const userHead = git(repo, "rev-parse", "HEAD");
  const names = git(repo, "diff", "--name-only", userHead, c.commit).split("\n").sort();
  assert.deepEqual(names, ["README.md", "notes/new.txt", "thawed.txt"]);
  assert.equal(git(repo, "log", "--format=%s", `${userHead}..${c.commit}`), "from the VM\nmade in the VM");
});

test("kill -9 of the server: a new one reattaches to the running VM", async () => {
  const vmPid = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id).pid;
  const serverPid = client.transport.pid;
  process.kill(serverPid, "SIGKILL");
  await waitFor("the killed server to exit", () => !processRuns(serverPid), 10_000);
  assert.ok(processRuns(vmPid), "the VM died with the server");
  client = await connectStdio({ stateDir, args: serverArgs, env });
  const listed = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
  assert.equal(listed.state, "running");
  assert.equal(listed.pid, vmPid);
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "cat thawed.txt" }, { timeout: BOOT_TIMEOUT_MS });
  assert.equal(r.stdout, "thawed\n");
});

test("snapshot and restore through real VMs: the fork has the files, not later changes", async () => {
  const snap = await callTool(client, "sandbox_snapshot", { id: sb.id, name: "vm-point" }, { timeout: BOOT_TIMEOUT_MS });
  assert.equal(snap.layers, 1);
  await callTool(client, "sandbox_exec", { id: sb.id, command: "echo after > after.txt" }, { timeout: BOOT_TIMEOUT_MS });
  const fork = await callTool(client, "sandbox_restore", { snapshot: "vm-point", name: "vm-fork" }, { timeout: BOOT_TIMEOUT_MS });
  const r = await callTool(client, "sandbox_exec", { id: fork.id, command: "cat thawed.txt notes/new.txt; test -e after.txt && echo after || echo no-after" }, { timeout: BOOT_TIMEOUT_MS });
  assert.equal(r.stdout, "thawed\nfrom the host\nno-after\n");
  assert.match(
    (await client.callTool({ name: "sandbox_snapshot", arguments: { id: sb.id, memory: true } })).content[0].text,
    /memory snapshots are not available: QEMU 7.2 cannot save a VM with virtiofs/,
  );
  // A VM whose virtiofsd dies has lost its filesystems: it is stopped and listed failed.
  const forkDir = join(stateDir, "sandboxes", fork.id);
  const vmPid = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === fork.id).pid;
  process.kill(Number(readFileSync(join(forkDir, "vmfs.pid"), "utf8")), "SIGKILL");
  const failed = await waitFor("the fork to be listed failed", async () => {
    const s = (await callTool(client, "sandbox_list")).sandboxes.find((x) => x.id === fork.id);
    return s.state === "failed" ? s : null;
  });
  assert.match(failed.error, /virtiofsd exited/);
  await waitFor("the fork's QEMU to exit", () => !processRuns(vmPid), 10_000);
  const refused = await client.callTool({ name: "sandbox_exec", arguments: { id: fork.id, command: "true" } });
  assert.equal(refused.isError, true);
  await callTool(client, "sandbox_destroy", { id: fork.id });
  assert.equal(existsSync(forkDir), false);
});

test("killing QEMU mid-exec fails the exec, marks the sandbox failed, leaves nothing behind", async () => {
  const dir = join(stateDir, "sandboxes", sb.id);
  const { sandboxes } = await callTool(client, "sandbox_list");
  const pid = sandboxes.find((s) => s.id === sb.id).pid;
  const exec = client.callTool({ name: "sandbox_exec", arguments: { id: sb.id, command: "sleep 30" } }, undefined, { timeout: 60_000 });
  await sleep(1500);
  process.kill(pid, "SIGKILL");
  const t0 = Date.now();
  const result = await exec;
  assert.equal(result.isError, true, JSON.stringify(result));
  assert.ok(Date.now() - t0 < 15_000, "exec took too long to fail");

  const listed = await waitFor("the sandbox to be listed failed or stopped", async () => {
    const { sandboxes: now } = await callTool(client, "sandbox_list");
    const s = now.find((x) => x.id === sb.id);
    return s && s.state !== "running" ? s : null;
  });
  assert.match(listed.state, /failed|stopped/);
  // Files kept: written after the snapshot, so in the sandbox's own upper.
  assert.equal(readFileSync(join(dir, "disk", "workspace", "upper", "after.txt"), "utf8"), "after\n");
  // virtiofsd exits when QEMU goes; the vmfs supervisor follows it.
  await waitFor("the VM's processes to exit", () => sandboxProcesses(dir).length === 0, 10_000);
  assert.equal(mountedBesidesDisk(dir), false);

  const d = await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.equal(d.destroyed, true);
  assert.equal(existsSync(dir), false);
  assert.deepEqual((await callTool(client, "sandbox_list")).sandboxes, []);
  const del = await callTool(client, "snapshot_delete", { snapshot: "vm-point" });
  assert.equal(del.deleted, true);
});

test("network: true gives the VM a NIC on QEMU's user network, whose 10.0.2.2 is not the host's loopback; DNS is slirp's", async () => {
  // A server on the host's 127.0.0.1: QEMU runs in a network namespace of its own, so
  // slirp's 10.0.2.2 (that namespace's loopback) does not reach it. What the VM does reach
  // is probed in tests/security/network.test.mjs.
  const server = createServer((socket) => socket.end("hello from the host\n"));
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  onCleanup(() => new Promise((resolve) => server.close(resolve)));
  const port = server.address().port;
  const started = Date.now();
  const net = await callTool(client, "sandbox_create", { name: "net", network: true }, { timeout: BOOT_TIMEOUT_MS });
  assert.equal(net.network, true);
  // bash for /dev/tcp; exec sees /bin/sh.
  const script = [
    "for f in /sys/class/net/*/operstate; do n=${f#/sys/class/net/}; echo ${n%/operstate} $(cat $f); done",
    `(exec 3<>/dev/tcp/10.0.2.2/${port} && echo connected && head -n1 <&3) 2>/dev/null || echo refused`,
    "cat /etc/resolv.conf",
  ].join("; ");
  const r = await callTool(client, "sandbox_exec", { id: net.id, command: `bash -c '${script}'` }, { timeout: BOOT_TIMEOUT_MS });
  console.log(`boot to first exec with a NIC: ${Date.now() - started} ms`);
  const dir = join(stateDir, "sandboxes", net.id);
  const why = () => `${r.stdout}\n${r.stderr}\n--- console ---\n${readFileSync(join(dir, "serial.log"), "utf8").slice(-3000)}`;
  const lines = r.stdout.split("\n");
  const nics = lines.filter((l) => /^\S+ (up|down|unknown|lowerlayerdown|dormant|notpresent|testing)$/.test(l));
  assert.ok(nics.some((l) => l.startsWith("lo ")), why());
  assert.ok(nics.some((l) => !l.startsWith("lo ") && l.endsWith(" up")), `no interface up besides lo:\n${why()}`);
  assert.ok(lines.includes("refused") && !lines.includes("hello from the host"), `10.0.2.2:${port} reached the host:\n${why()}`);
  assert.match(r.stdout, /^nameserver 10\.0\.2\.3$/m);
  assert.doesNotMatch(r.stdout, /^nameserver (?!10\.0\.2\.3$)/m);
  await callTool(client, "sandbox_destroy", { id: net.id });
  await waitFor("the network VM's processes to exit", () => sandboxProcesses(dir).length === 0, 10_000);
}, { timeoutMs: BOOT_TIMEOUT_MS + 30_000 });

test("a guest that cannot mount its filesystems fails the create with its console, leaves nothing running", async () => {
  // A guest kernel directory whose initramfs lacks the virtiofs module: guest-init cannot
  // mount the root, says so on the console and powers the VM off.
  const broken = tempStateDir();
  for (const f of ["vmlinuz", "VERSION"]) copyFileSync(join(guestDir, f), join(broken, f));
  mkdirSync(join(broken, "modules"));
  const order = readFileSync(join(guestDir, "modules", "order"), "utf8").split("\n").filter((m) => m && m !== "virtiofs");
  for (const m of order) copyFileSync(join(guestDir, "modules", `${m}.ko`), join(broken, "modules", `${m}.ko`));
  writeFileSync(join(broken, "modules", "order"), order.join("\n") + "\n");
  const dir = tempStateDir();
  const c = await connectStdio({ stateDir: dir, args: serverArgs, env: { ...env, WARREN_GUEST_DIR: broken } });
  const r = await c.callTool({ name: "sandbox_create", arguments: { name: "no-fs" } }, undefined, { timeout: BOOT_TIMEOUT_MS });
  assert.equal(r.isError, true, JSON.stringify(r));
  assert.match(r.content[0].text, /virtiofs|sandbox root/, r.content[0].text);
  const listed = (await callTool(c, "sandbox_list")).sandboxes[0];
  assert.equal(listed.state, "failed");
  await waitFor("the failed VM's processes to exit", () => sandboxProcesses(join(dir, "sandboxes")).length === 0, 10_000);
  assert.equal(mountedBesidesDisk(dir), false);
  await callTool(c, "sandbox_destroy", { id: listed.id });
}, { timeoutMs: 180_000 });
