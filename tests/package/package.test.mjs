// The Debian package on a fresh Debian 12: tools/package/build-deb.sh builds
// warren_<version>_amd64.deb; a root made by mmdebstrap (cached in
// $WARREN_BUILD_DIR/package-test/base.tar) resolves its dependencies from the archive;
// that root boots with systemd-nspawn --boot (systemd as PID 1, its own network
// namespace) and `apt install ./warren_*.deb` there starts warren.service on
// 127.0.0.1:8080 with the token in /var/lib/warren/token; the configuration file, a bad
// configuration file, a restart, an upgrade to a newer version, remove and purge.
//
// On a cgroup v1 host (these build machines) systemd-nspawn mounts the memory, pids,
// freezer and cpu hierarchies read-only inside the container, and sandboxes need cgroups
// of their own: the test hands the container one directory of each hierarchy
// (/sys/fs/cgroup/<controller>/warren-pkgtest-<pid>, bound over the container's
// /sys/fs/cgroup/<controller>), so the service's jails run under systemd and
// `systemctl restart warren`, an upgrade and a purge are checked with a live sandbox.
// The last case runs the installed binary in the same root through chroot (in a mount
// namespace of its own, with the host's /proc, /sys and /dev): /etc/warren/warren.conf
// read by default, guest-init from /usr/libexec/warren, a sandbox kept across a restart
// of the server and an upgrade, and `dpkg --purge` stopping it and removing the state.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

import {
  callTool,
  connectHttp,
  onCleanup,
  processRuns,
  repoRoot,
  skip,
  skipUnlessRoot,
  test,
  waitFor,
} from "../integration/lib/harness.mjs";

skipUnlessRoot("needs root: mmdebstrap, systemd-nspawn and chroot");
for (const tool of ["mmdebstrap", "systemd-nspawn", "nsenter", "unshare", "cpack", "dpkg-shlibdeps", "curl"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) skip(`${tool} is not installed (tools/setup.sh installs it)`);
}

const buildDir = process.env.WARREN_BUILD_DIR ?? join(repoRoot, "build");
const cache = join(buildDir, "package-test");
const archives = join(cache, "archives"); // apt's downloads, kept between runs
const lists = join(cache, "lists"); // apt's package lists, refreshed each run
mkdirSync(join(archives, "partial"), { recursive: true });
const aptBinds = [`--bind=${archives}:/var/cache/apt/archives`, `--bind=${lists}:/var/lib/apt/lists`];
const root = join(cache, `root-${process.pid}`);
const machine = `warren-pkg-${process.pid}`;
const DEB_IN_ROOT = "/root/warren.deb";
const UPGRADE_IN_ROOT = "/root/warren-upgrade.deb"; // the same files, a newer version
const STEP_MS = 900_000;

let deb; // path of the package on the host
let container; // the booted nspawn: {process, leader}

// ---- helpers ---------------------------------------------------------------------------

function run(cmd, args, { input, allowFail = false, timeoutMs = 600_000 } = {}) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  const took = Date.now() - started;
  if (took > 5000) console.log(`# ${took} ms: ${cmd} ${args.join(" ").slice(-120)}`);
  if (!allowFail && r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** Runs a shell command inside the booted container (every namespace of its PID 1). */
function inContainer(script, opts = {}) {
  return run("nsenter", ["-t", String(container.leader), "-a", "/bin/sh", "-c", script], opts);
}

/** curl from the host inside the container's network namespace. */
function curlInContainer(args) {
  return run("nsenter", ["-t", String(container.leader), "-n", "curl", "-sS", ...args], { allowFail: true });
}

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "package-test", version: "1" } },
});

/** POSTs initialize to /mcp on port; returns {status, body}. */
function initialize(port, token) {
  const auth = token ? ["-H", `Authorization: Bearer ${token}`] : [];
  const r = curlInContainer(["-w", "\n%{http_code}", "-X", "POST",
    "-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream",
    ...auth, "--data", INITIALIZE, `http://127.0.0.1:${port}/mcp`]);
  const lines = r.stdout.trimEnd().split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

/** An MCP session with the service over curl in the container's network; call() returns structuredContent. */
function mcpSession(port, bearer) {
  const post = (message, session) => {
    const args = ["-i", "-X", "POST", "-H", "Content-Type: application/json",
      "-H", "Accept: application/json, text/event-stream", "-H", `Authorization: Bearer ${bearer}`];
    if (session) args.push("-H", `Mcp-Session-Id: ${session}`);
    const r = curlInContainer([...args, "--data", JSON.stringify(message), `http://127.0.0.1:${port}/mcp`]);
    const split = r.stdout.indexOf("\r\n\r\n");
    const head = r.stdout.slice(0, split), body = r.stdout.slice(split + 4).trim();
    // A JSON body, or an SSE stream whose data lines carry the messages.
    const messages = body.startsWith("{") ? [JSON.parse(body)]
      : body.split("\n").filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5)));
    return { session: head.match(/^mcp-session-id: *(\S+)/im)?.[1], reply: messages.find((m) => m.id === message.id) };
  };
  const { session } = post(JSON.parse(INITIALIZE));
  assert.ok(session, "no Mcp-Session-Id");
  post({ jsonrpc: "2.0", method: "notifications/initialized" }, session);
  let next = 2;
  return {
    call(name, args = {}) {
      const { reply } = post({ jsonrpc: "2.0", id: next++, method: "tools/call", params: { name, arguments: args } }, session);
      assert.ok(reply?.result && !reply.result.isError, `${name}: ${JSON.stringify(reply)}`);
      return reply.result.structuredContent;
    },
  };
}

function serviceProperty(name) {
  return inContainer(`systemctl show -p ${name} --value warren.service`).stdout.trim();
}

function token() {
  return readFileSync(join(root, "var/lib/warren/token"), "utf8").trim();
}

// cgroup v1: a directory of each hierarchy for the container's sandboxes, bound at
// /mnt/cgroup-<controller> in the root (nspawn mounts its own read-only hierarchies over
// /sys/fs/cgroup later; cgroupsWritable binds these over them once the container runs).
const CONTROLLERS = ["memory", "pids", "freezer", "cpu"];
const cgroupV1 = !existsSync("/sys/fs/cgroup/cgroup.controllers");
const hostCgroup = (c) => `/sys/fs/cgroup/${c}/warren-pkgtest-${process.pid}`;

function cgroupBinds() {
  if (!cgroupV1) return [];
  onCleanup(() => {
    // Deepest first; the directories are empty once the container's processes are gone.
    for (const c of CONTROLLERS) run("sh", ["-c", `[ -d "$1" ] && find "$1" -depth -type d -exec rmdir {} +`, "sh", hostCgroup(c)], { allowFail: true });
  });
  return CONTROLLERS.map((c) => {
    mkdirSync(hostCgroup(c), { recursive: true });
    mkdirSync(join(root, `mnt/cgroup-${c}`), { recursive: true });
    return `--bind=${hostCgroup(c)}:/mnt/cgroup-${c}`;
  });
}

function cgroupsWritable() {
  if (cgroupV1) inContainer(CONTROLLERS.map((c) => `mount --bind /mnt/cgroup-${c} /sys/fs/cgroup/${c}`).join(" && "));
}

async function bootContainer() {
  const child = spawn("systemd-nspawn", ["-D", root, "--boot", `--machine=${machine}`, "--register=no",
    "--keep-unit", "--private-network", ...aptBinds, ...cgroupBinds()],
  { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.on("data", (d) => { log = (log + d).slice(-20000); });
  child.stderr.on("data", (d) => { log = (log + d).slice(-20000); });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM"); // nspawn asks the container's systemd to power off
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  };
  onCleanup(stop);
  let leader = 0;
  await waitFor("the container's systemd", () => {
    if (child.exitCode !== null) throw new Error(`systemd-nspawn exited ${child.exitCode}\n${log}`);
    const kids = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).stdout.trim();
    leader = Number(kids.split("\n")[0]) || 0;
    if (!leader) return false;
    const state = spawnSync("nsenter", ["-t", String(leader), "-a", "systemctl", "is-system-running"],
      { encoding: "utf8" }).stdout.trim();
    return state === "running" || state === "degraded";
  }, 120_000);
  return { process: child, leader, stop, log: () => log };
}

// ---- the package -----------------------------------------------------------------------

test("build-deb.sh builds warren_<version>_amd64.deb with its runtime dependencies", () => {
  const out = run(join(repoRoot, "tools/package/build-deb.sh"), [buildDir], { timeoutMs: STEP_MS }).stdout;
  deb = out.match(/build-deb: (\S+\.deb)$/m)?.[1];
  assert.ok(deb && existsSync(deb), `no package in:\n${out}`);
  assert.match(deb, /\/warren_\d+\.\d+\.\d+_amd64\.deb$/);
  const field = (f) => run("dpkg-deb", ["-f", deb, f]).stdout.trim();
  const depends = field("Depends");
  for (const p of ["libuv1", "libcjson1", "libsqlite3-0", "libseccomp2", "libgit2-1.5", "libssl3",
    "libhttp-parser2.9", "libwslay1", "nftables", "slirp4netns", "e2fsprogs", "kmod"]) {
    assert.match(depends, new RegExp(`(^|, )${p.replace(/[.+]/g, "\\$&")}( |,|$)`), `Depends lacks ${p}: ${depends}`);
  }
  assert.equal(field("Recommends"), "qemu-system-x86, skopeo");
  const files = run("dpkg-deb", ["-c", deb]).stdout;
  for (const f of ["./usr/bin/warren", "./usr/libexec/warren/guest-init", "./usr/libexec/warren/fetch-guest-kernel",
    "./lib/systemd/system/warren.service", "./etc/warren/warren.conf", "./usr/share/doc/warren/copyright",
    "./usr/share/man/man1/warren.1.gz"]) {
    assert.ok(files.includes(` ${f}\n`), `${f} missing from the package:\n${files}`);
  }
  assert.equal(run("dpkg-deb", ["--ctrl-tarfile", deb]).status, 0);
  const conffiles = run("sh", ["-c", `dpkg-deb -I "${deb}" conffiles`]).stdout;
  assert.equal(conffiles.trim(), "/etc/warren/warren.conf");
}, { timeoutMs: STEP_MS });

test("a fresh Debian 12 root resolves the dependencies, and no front-end or test tooling", () => {
  const base = join(cache, "base.tar");
  if (!existsSync(base)) {
    run("mmdebstrap", ["--variant=apt", "--format=tar", "--include=systemd,systemd-sysv,dbus,ca-certificates", "bookworm",
      `${base}.tmp`, "http://deb.debian.org/debian"], { timeoutMs: STEP_MS });
    run("mv", [`${base}.tmp`, base]);
  }
  mkdirSync(root);
  onCleanup(() => run("rm", ["-rf", "--one-file-system", root], { allowFail: true }));
  run("tar", ["-C", root, "-xf", base]);
  copyFileSync(deb, join(root, DEB_IN_ROOT));
  // A newer version of the package (the same files, Version + "+1"), for the upgrade.
  const tree = join(root, "root/upgrade");
  run("dpkg-deb", ["-R", deb, tree]);
  const control = join(tree, "DEBIAN/control");
  writeFileSync(control, readFileSync(control, "utf8").replace(/^Version: (.*)$/m, "Version: $1+1"));
  run("dpkg-deb", ["--root-owner-group", "-b", tree, join(root, UPGRADE_IN_ROOT)]);
  run("rm", ["-rf", tree]);
  // The guest kernel of the build tree, when there is one: postinst then finds it up to
  // date instead of downloading it again (it does when the mirror has a newer one).
  const guest = join(buildDir, "guest");
  if (existsSync(join(guest, "VERSION"))) cpSync(guest, join(root, "var/lib/warren/kernel"), { recursive: true });
  // The sources of a Debian 12 installation (mmdebstrap writes the release alone), and
  // apt's lists and downloads kept between runs.
  writeFileSync(join(root, "etc/apt/sources.list"), [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main", ""].join("\n"));
  mkdirSync(join(lists, "partial"), { recursive: true });
  // One container run: the lists, what a plain `apt install` would bring (Recommends
  // included, simulated), and the downloads of the service's own install, which is then
  // done offline in the booted container.
  const out = run("systemd-nspawn", ["-q", "-D", root, "--register=no", "--keep-unit", ...aptBinds, "/bin/sh", "-c",
    `apt-get update -q >/dev/null && apt-get install -s ${DEB_IN_ROOT} && ` +
    `DEBIAN_FRONTEND=noninteractive apt-get install -q -y --download-only --no-install-recommends ${DEB_IN_ROOT} >/dev/null`],
  { timeoutMs: STEP_MS }).stdout;
  const installs = [...out.matchAll(/^Inst (\S+)/gm)].map((m) => m[1]);
  for (const p of ["warren", "libuv1", "libgit2-1.5", "nftables", "slirp4netns", "qemu-system-x86", "qemu-system-common"]) {
    assert.ok(installs.includes(p), `apt install would not bring ${p}: ${installs.join(" ")}`);
  }
  const forbidden = installs.filter((p) => /^(nodejs|npm|node-|chromium|cmake|gcc|g\+\+|build-essential|make$|docker-registry|umoci|mmdebstrap|busybox-static|clang|.*-dev$)/.test(p));
  assert.deepEqual(forbidden, [], "front-end, build or test tooling among the dependencies");
}, { timeoutMs: STEP_MS });

// ---- the service, under systemd --------------------------------------------------------

test("apt install in the booted root starts warren.service on 127.0.0.1:8080 with the token", async () => {
  container = await bootContainer();
  cgroupsWritable();
  const out = inContainer(`DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends ${DEB_IN_ROOT} 2>&1`).stdout;
  assert.match(out, /Setting up warren /);
  // The guest kernel: up to date, fetched, or a clear word that it could not be.
  assert.match(out, /build-guest-kernel: (.* is up to date|installed )|could not fetch the VM guest kernel/);
  assert.equal(inContainer("systemctl is-enabled warren.service").stdout.trim(), "enabled");
  await waitFor("warren.service to answer", () => initialize(8080, token()).status === 200, 60_000);
  assert.equal(inContainer("systemctl is-active warren.service").stdout.trim(), "active");
  const st = statSync(join(root, "var/lib/warren/token"));
  assert.equal(st.mode & 0o777, 0o600);
  assert.match(token(), /^[0-9a-f]{64}$/);
  assert.equal(statSync(join(root, "var/lib/warren")).mode & 0o777, 0o700);
  const answer = initialize(8080, token());
  assert.match(answer.body, /"serverInfo":\{"name":"warren"/);
  assert.equal(initialize(8080, null).status, 401);
  assert.equal(initialize(8080, "0".repeat(64)).status, 401);
  // Logs are in the journal.
  const journal = inContainer("journalctl -u warren.service --no-pager -o cat").stdout;
  assert.match(journal, /listening on http:\/\/127\.0\.0\.1:8080\/mcp/);
  assert.match(journal, /backend jail/);
  // The licence ships as the package's copyright file.
  assert.deepEqual(readFileSync(join(root, "usr/share/doc/warren/copyright")), readFileSync(join(repoRoot, "LICENSE")));
  assert.equal(inContainer("systemctl show -p KillMode --value warren.service").stdout.trim(), "process");
  // Offline (the container's network is loopback alone), postinst cannot fetch the guest
  // kernel: it says so and how to fetch it later, and the service runs on (the jail).
  const offline = inContainer("rm -rf /var/lib/warren/kernel && /var/lib/dpkg/info/warren.postinst configure 0.1.0 2>&1").stdout;
  assert.match(offline, /warren: could not fetch the VM guest kernel .*\n?.*For VMs run: \/usr\/libexec\/warren\/fetch-guest-kernel \/var\/lib\/warren\/kernel/);
  await waitFor("warren.service after postinst", () => initialize(8080, token()).status === 200, 30_000);
}, { timeoutMs: STEP_MS });

test("systemd-analyze verify accepts the unit", () => {
  const r = inContainer("systemd-analyze verify /lib/systemd/system/warren.service 2>&1", { allowFail: true });
  const about = r.stdout.split("\n").filter((l) => /warren/.test(l));
  assert.equal(r.status, 0, r.stdout);
  assert.deepEqual(about, [], r.stdout);
});

test("the configuration file sets the listener; a bad line stops the server with file:line", async () => {
  const conf = join(root, "etc/warren/warren.conf");
  const original = readFileSync(conf, "utf8");
  writeFileSync(conf, `${original}\nlisten = 127.0.0.1:8181\nlog-level = debug\n`);
  inContainer("systemctl restart warren.service");
  await waitFor("warren on 8181", () => initialize(8181, token()).status === 200, 30_000);
  assert.equal(initialize(8080, token()).status, 0, "8080 still answers");
  const lines = original.split("\n").length;
  writeFileSync(conf, `${original}\nlisten 127.0.0.1:8282\n`);
  inContainer("systemctl restart warren.service", { allowFail: true });
  await waitFor("the bad file to be reported", () => inContainer("journalctl -u warren.service --no-pager -o cat")
    .stdout.includes(`warren: /etc/warren/warren.conf:${lines + 1}: expected 'key = value'`), 30_000);
  assert.notEqual(inContainer("systemctl is-active warren.service", { allowFail: true }).stdout.trim(), "active");
  writeFileSync(conf, original);
  inContainer("systemctl reset-failed warren.service; systemctl restart warren.service");
  await waitFor("warren back on 8080", () => initialize(8080, token()).status === 200, 30_000);
}, { timeoutMs: STEP_MS });

let serviceSandbox; // {id, pid}: made by the service, in the container's PID namespace

test("systemctl restart and an upgrade keep a sandbox, the token and the state", async () => {
  const before = token();
  let mcp = mcpSession(8080, before);
  const made = mcp.call("sandbox_create", { name: "under-systemd" });
  serviceSandbox = mcp.call("sandbox_list").sandboxes.find((x) => x.id === made.id);
  assert.ok(serviceSandbox?.pid > 0, JSON.stringify(serviceSandbox));
  assert.equal(mcp.call("sandbox_exec", { id: serviceSandbox.id, command: "echo made by the service" }).stdout,
    "made by the service\n");
  const pid1 = serviceProperty("MainPID");
  inContainer("systemctl restart warren.service");
  await waitFor("the restarted server", () => initialize(8080, before).status === 200, 30_000);
  const pid2 = serviceProperty("MainPID");
  assert.notEqual(pid2, pid1);
  mcp = mcpSession(8080, before);
  let listed = mcp.call("sandbox_list").sandboxes.find((x) => x.id === serviceSandbox.id);
  assert.equal(listed?.state, "running", "systemctl restart lost the sandbox");
  assert.equal(listed.pid, serviceSandbox.pid);
  assert.equal(mcp.call("sandbox_exec", { id: serviceSandbox.id, command: "echo after restart" }).stdout, "after restart\n");
  inContainer(`DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends ${UPGRADE_IN_ROOT} >/dev/null 2>&1`);
  assert.match(inContainer("dpkg-query -W -f '${Version}' warren").stdout, /\+1$/);
  await waitFor("the upgraded server", () => initialize(8080, before).status === 200, 30_000);
  assert.notEqual(serviceProperty("MainPID"), pid2, "postinst did not restart the service");
  assert.equal(token(), before);
  mcp = mcpSession(8080, before);
  listed = mcp.call("sandbox_list").sandboxes.find((x) => x.id === serviceSandbox.id);
  assert.equal(listed?.state, "running", "the upgrade lost the sandbox");
  assert.equal(mcp.call("sandbox_exec", { id: serviceSandbox.id, command: "echo after upgrade" }).stdout, "after upgrade\n");
}, { timeoutMs: STEP_MS });

test("remove keeps /var/lib/warren; purge removes it", async () => {
  inContainer("DEBIAN_FRONTEND=noninteractive apt-get remove -q -y warren >/dev/null 2>&1");
  assert.ok(!existsSync(join(root, "usr/bin/warren")));
  assert.ok(existsSync(join(root, "var/lib/warren/token")), "remove lost the state directory");
  assert.ok(existsSync(join(root, "etc/warren/warren.conf")), "remove lost the configuration");
  assert.notEqual(inContainer("systemctl is-active warren.service", { allowFail: true }).stdout.trim(), "active");
  assert.notEqual(initialize(8080, token()).status, 200);
  // remove left the sandbox running (the service stopped alone); purge stops it.
  const alive = () => inContainer(`test -d /proc/${serviceSandbox.pid} && ! grep -q '^State:.*Z' /proc/${serviceSandbox.pid}/status`, { allowFail: true }).status === 0;
  assert.ok(alive(), "remove stopped the sandbox");
  inContainer("DEBIAN_FRONTEND=noninteractive apt-get purge -q -y warren >/dev/null 2>&1");
  await waitFor("purge to stop the sandbox", () => !alive(), 10_000);
  assert.ok(!existsSync(join(root, "var/lib/warren")), "purge left /var/lib/warren");
  assert.ok(!existsSync(join(root, "etc/warren")), "purge left /etc/warren");
  await container.stop();
}, { timeoutMs: STEP_MS });

// ---- a sandbox, through the installed binary -------------------------------------------

test("the installed binary keeps a sandbox across a restart and an upgrade; purge stops it and removes the state", async () => {
  // A mount namespace of our own holds the root's /proc, /sys and /dev; every command
  // below enters it, so nothing is mounted in the host's namespace.
  const holder = spawn("unshare", ["-m", "--propagation", "private", "/bin/sh", "-c",
    // The root is a mount point of its own, as / is on a real system (the jailer makes
    // the mounts below / private, which needs / to be one).
    `mount --bind "${root}" "${root}" && mount --rbind /proc "${root}/proc" && ` +
    `mount --rbind /sys "${root}/sys" && mount --rbind /dev "${root}/dev" && exec sleep 3600`],
  { stdio: "ignore" });
  onCleanup(() => holder.kill("SIGKILL"));
  await waitFor("the mount namespace", () =>
    spawnSync("nsenter", ["-t", String(holder.pid), "-m", "test", "-e", `${root}/proc/self`]).status === 0, 10_000);
  const inRoot = (args, opts) => run("nsenter", ["-t", String(holder.pid), "-m", "chroot", root, ...args], opts);
  inRoot(["dpkg", "-i", DEB_IN_ROOT]);
  // /etc/warren/warren.conf is read without --config.
  const conf = join(root, "etc/warren/warren.conf");
  writeFileSync(conf, `${readFileSync(conf, "utf8")}\nbackend = jail\nlisten = 127.0.0.1:0\nidle-pause-seconds = 0\n`);
  const servers = [];
  const startServer = async () => {
    const child = spawn("nsenter", ["-t", String(holder.pid), "-m", "chroot", root, "/usr/bin/warren", "serve"],
      { stdio: ["ignore", "ignore", "pipe"] });
    servers.push(child);
    onCleanup(() => child.kill("SIGKILL"));
    let log = "";
    child.stderr.on("data", (d) => { log += d; });
    const url = await waitFor("the installed warren to listen", () => {
      if (child.exitCode !== null) throw new Error(`warren exited ${child.exitCode}\n${log}`);
      return log.match(/warren: listening on (http:\/\/\S+\/mcp)$/m)?.[1];
    }, 30_000);
    assert.match(log, /state directory \/var\/lib\/warren, backend jail/);
    return { child, url };
  };
  const stopServer = async (child) => {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  let server = await startServer();
  let client = await connectHttp(server.url, token());
  const sandbox = await callTool(client, "sandbox_create", { name: "packaged" });
  let r = await callTool(client, "sandbox_exec", { id: sandbox.id, command: "echo hello from the package" });
  assert.equal(r.stdout, "hello from the package\n");
  // The sandbox's PID 1 is the installed guest-init.
  const listed = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sandbox.id);
  assert.ok(listed.pid > 0);
  assert.equal(readlinkSync(`/proc/${listed.pid}/exe`), join(root, "usr/libexec/warren/guest-init"));
  await client.close();
  await stopServer(server.child);
  // An upgrade while the sandbox runs (the server stopped, as the service's is) leaves
  // it alone, and the new server reattaches to it.
  inRoot(["dpkg", "-i", UPGRADE_IN_ROOT]);
  assert.ok(processRuns(listed.pid), "the upgrade stopped the sandbox");
  server = await startServer();
  client = await connectHttp(server.url, token());
  const again = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sandbox.id);
  assert.equal(again?.state, "running");
  assert.equal(again.pid, listed.pid);
  r = await callTool(client, "sandbox_exec", { id: sandbox.id, command: "echo still here" });
  assert.equal(r.stdout, "still here\n");
  await client.close();
  await stopServer(server.child);
  const purge = inRoot(["dpkg", "--purge", "warren"]);
  await waitFor(`the sandbox to be stopped by purge\n${purge.stdout}${purge.stderr}`, () => !processRuns(listed.pid), 10_000);
  assert.ok(!existsSync(join(root, "var/lib/warren")), "purge left /var/lib/warren");
  const mounts = spawnSync("nsenter", ["-t", String(holder.pid), "-m", "cat", "/proc/self/mountinfo"], { encoding: "utf8" }).stdout;
  assert.ok(!mounts.includes(`${root}/var/lib/warren`), "mounts left below /var/lib/warren");
  holder.kill("SIGKILL");
}, { timeoutMs: STEP_MS });
