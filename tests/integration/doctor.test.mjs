// `warren doctor` and `warren mcp-config`. The doctor's verdicts are checked against what
// this machine really has, found here independently (/dev/kvm, /proc/cpuinfo, PATH,
// /proc/filesystems, the cgroup mount, the guest kernel next to the binary), field by field
// in --json; a host where nothing can run (overlayfs hidden in a private mount namespace)
// gives exit status 1. mcp-config's output is parsed for every client, and two of them are
// launched for real: the stdio one by the MCP SDK's StdioClientTransport, the HTTP one
// against a running `warren serve`.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { onCleanup, repoRoot, startHttpServer, tempStateDir, test, warrenBinary } from "./lib/harness.mjs";

const binary = warrenBinary();
const isRoot = process.getuid() === 0;

function warren(args, env = {}) {
  const r = spawnSync(binary, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function doctorJson(args = [], env = {}) {
  const r = warren(["doctor", "--json", ...args], env);
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch (e) {
    assert.fail(`doctor --json printed no JSON (status ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  return { ...r, report };
}

function check(report, name) {
  const c = report.checks.find((x) => x.name === name);
  assert.ok(c, `no check named ${name} in ${JSON.stringify(report.checks.map((x) => x.name))}`);
  return c;
}

function inPath(name) {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return null;
}

// ---- the truth about this machine, found without warren ---------------------------------

function kvmOpens() {
  try {
    closeSync(openSync("/dev/kvm", "r+"));
    return true;
  } catch {
    return false;
  }
}
const truth = {
  kvmDevice: kvmOpens(),
  cpuFlags: /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync("/proc/cpuinfo", "utf8")),
  qemu: inPath("qemu-system-x86_64"),
  ch: process.env.WARREN_CLOUD_HYPERVISOR || inPath("cloud-hypervisor"),
  virtiofsd: existsSync("/usr/lib/qemu/virtiofsd"),
  kernelDir: process.env.WARREN_GUEST_DIR || join(dirname(binary), "guest"),
  cgroupV2: existsSync("/sys/fs/cgroup/cgroup.controllers"),
  overlay: readFileSync("/proc/filesystems", "utf8").includes("\toverlay\n"),
  network: isRoot && existsSync("/usr/bin/slirp4netns") && existsSync("/usr/sbin/nft"),
  disk: isRoot && existsSync("/dev/loop-control") && readFileSync("/proc/filesystems", "utf8").includes("\text4\n") &&
    ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4"].some(existsSync),
};
truth.cgroupOk = truth.cgroupV2
  ? ["memory", "pids"].every((c) => readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").split(/\s+/).includes(c))
  : ["memory", "pids", "freezer"].every((c) => existsSync(`/sys/fs/cgroup/${c}`));
truth.kernel = existsSync(join(truth.kernelDir, "vmlinuz")) && existsSync(join(truth.kernelDir, "VERSION"));
// KVM runs VMs only where the device opens and the CPU shows the flags (and the env does
// not force TCG); everything else here follows from these.
truth.kvm = truth.kvmDevice && truth.cpuFlags && process.env.WARREN_QEMU_ACCEL !== "tcg";

test("doctor --json: every verdict matches this machine", () => {
  const stateDir = tempStateDir();
  const { status, report } = doctorJson(["--state-dir", stateDir, "--listen", "127.0.0.1:0"], { WARREN_TOKEN: "" });
  assert.equal(report.state_dir, stateDir);
  for (const c of report.checks) {
    assert.equal(typeof c.name, "string");
    assert.equal(typeof c.ok, "boolean");
    assert.ok(typeof c.detail === "string" && c.detail.length > 0, `${c.name}: detail`);
    // A failure says what to do about it; a pass has nothing to fix.
    if (c.ok) assert.equal(c.fix, null, `${c.name}: fix on a passing check`);
    else assert.ok(typeof c.fix === "string" && c.fix.length > 10, `${c.name}: no fix`);
  }
  assert.equal(check(report, "kvm-device").ok, truth.kvmDevice);
  if (!existsSync("/dev/kvm")) assert.match(check(report, "kvm-device").detail, /\/dev\/kvm does not exist/);
  assert.equal(check(report, "kvm-cpu").ok, truth.cpuFlags);
  assert.equal(check(report, "kvm").ok, truth.kvm);
  assert.equal(check(report, "qemu").ok, !!truth.qemu);
  if (truth.qemu) {
    const version = execFileSync(truth.qemu, ["--version"], { encoding: "utf8" }).split("\n")[0];
    assert.ok(check(report, "qemu").detail.includes(truth.qemu) && check(report, "qemu").detail.includes(version),
      check(report, "qemu").detail);
  }
  assert.equal(check(report, "cloud-hypervisor").ok, !!truth.ch);
  assert.equal(check(report, "virtiofsd").ok, truth.virtiofsd);
  assert.equal(check(report, "guest-kernel").ok, truth.kernel);
  if (truth.kernel) {
    const version = readFileSync(join(truth.kernelDir, "VERSION"), "utf8").split("\n")[0];
    assert.ok(check(report, "guest-kernel").detail.includes(version));
  }
  assert.match(check(report, "cgroup").detail, truth.cgroupV2 ? /^cgroup v2/ : /^cgroup v1/);
  assert.equal(check(report, "overlayfs").ok, truth.overlay);
  assert.equal(check(report, "network").ok, truth.network);
  assert.equal(check(report, "disk-caps").ok, truth.disk);
  const state = check(report, "state-dir");
  assert.equal(state.ok, true);
  const avail = Number(execFileSync("df", ["-B1", "--output=avail", stateDir], { encoding: "utf8" }).split("\n")[1]);
  const gib = Number(/([\d.]+) GiB free/.exec(state.detail)[1]);
  assert.ok(Math.abs(gib - avail / 2 ** 30) < 0.5, `${state.detail} vs df ${avail}`);
  assert.equal(check(report, "listen").ok, true);
  assert.match(check(report, "token").detail, /does not exist yet/);

  // The backends and auto's choice, by the rules of DESIGN.md.
  const byName = Object.fromEntries(report.backends.map((b) => [b.name, b]));
  assert.deepEqual(report.backends.map((b) => b.name), ["cloud-hypervisor", "qemu", "jail"]);
  for (const b of report.backends) assert.equal(b.why === null, b.available, `${b.name}: why`);
  assert.equal(byName["cloud-hypervisor"].available, truth.kvm && !!truth.ch && truth.virtiofsd);
  assert.equal(byName.qemu.available, !!truth.qemu && truth.virtiofsd && isRoot);
  // As root the jail needs its cgroup controllers; otherwise unprivileged user namespaces.
  assert.equal(check(report, "cgroup").ok, truth.cgroupOk);
  if (isRoot) assert.equal(byName.jail.available, truth.overlay && truth.cgroupOk);
  const expected = byName["cloud-hypervisor"].available ? "cloud-hypervisor"
    : truth.kvm && byName.qemu.available ? "qemu"
    : byName.jail.available ? "jail" : null;
  assert.equal(report.backend.chosen, expected);
  if (expected === "jail" && !truth.kvm) assert.match(report.backend.reason, /KVM/);
  assert.equal(status, expected ? 0 : 1);
});

test("doctor without --json: one line per check, a fix on each failure, auto's pick", () => {
  const stateDir = tempStateDir();
  const r = warren(["doctor", "--state-dir", stateDir, "--listen", "127.0.0.1:0"]);
  const { report } = doctorJson(["--state-dir", stateDir, "--listen", "127.0.0.1:0"]);
  assert.equal(r.status, report.backend.chosen ? 0 : 1);
  for (const c of report.checks) {
    const line = r.stdout.split("\n").find((l) => new RegExp(`^(ok|FAIL)\\s+${c.name}\\s`).test(l));
    assert.ok(line, `no line for ${c.name}:\n${r.stdout}`);
    assert.ok(line.startsWith(c.ok ? "ok" : "FAIL"), line);
    if (!c.ok) assert.ok(line.includes(`-> ${c.fix}`), line);
  }
  if (report.backend.chosen) assert.ok(r.stdout.includes(`--backend auto picks ${report.backend.chosen}: `));
});

test("doctor: a missing guest kernel, a token file others can read, a bad --listen, bad arguments", () => {
  const stateDir = tempStateDir();
  writeFileSync(join(stateDir, "token"), "0123456789abcdef0123456789abcdef\n");
  chmodSync(join(stateDir, "token"), 0o644);
  const { report } = doctorJson(["--state-dir", stateDir, "--listen", "nonsense"],
    { WARREN_GUEST_DIR: "/nonexistent/guest", WARREN_TOKEN: "" });
  const kernel = check(report, "guest-kernel");
  assert.equal(kernel.ok, false);
  assert.match(kernel.detail, /\/nonexistent\/guest/);
  assert.match(kernel.fix, /build-guest-kernel\.sh/);
  const token = check(report, "token");
  assert.equal(token.ok, false);
  assert.match(token.detail, /mode 0644/);
  assert.match(token.fix, /chmod 600/);
  assert.equal(check(report, "listen").ok, false);
  chmodSync(join(stateDir, "token"), 0o600);
  const fixed = check(doctorJson(["--state-dir", stateDir], { WARREN_TOKEN: "" }).report, "token");
  assert.equal(fixed.ok, true, fixed.detail);
  assert.match(fixed.detail, /mode 0600/);
  const short = check(doctorJson(["--state-dir", stateDir], { WARREN_TOKEN: "short" }).report, "token");
  assert.equal(short.ok, false);
  assert.match(short.detail, /WARREN_TOKEN/);
  assert.equal(warren(["doctor", "--bogus"]).status, 2);
  assert.equal(warren(["doctor", "extra"]).status, 2);
});

test("doctor: a port in use is reported as such, not as a failure", async () => {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  onCleanup(() => server.close());
  const listen = `127.0.0.1:${server.address().port}`;
  const c = check(doctorJson(["--listen", listen, "--state-dir", tempStateDir()]).report, "listen");
  assert.equal(c.ok, true);
  assert.match(c.detail, /in use/);
});

test("doctor exits 1 when no backend can run (overlayfs hidden from it)", () => {
  if (!isRoot) return; // a private mount namespace needs root
  if (truth.kvm && truth.ch) return; // Cloud Hypervisor needs no overlayfs check here
  const fake = join(tempStateDir(), "filesystems");
  writeFileSync(fake, readFileSync("/proc/filesystems", "utf8").replace(/^.*\toverlay\n/m, ""));
  const script = `mount --bind "$1" /proc/filesystems && exec "$2" doctor --json --state-dir "$3"`;
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", fake, binary, tempStateDir()],
    { encoding: "utf8", timeout: 60_000 });
  const report = JSON.parse(r.stdout);
  assert.equal(r.status, truth.kvm && truth.qemu ? 0 : 1, r.stderr);
  if (r.status === 1) {
    assert.equal(report.backend.chosen, null);
    assert.match(report.backend.reason, /no sandbox backend can run/);
    assert.match(report.backend.reason, /overlayfs/);
  }
  assert.equal(check(report, "overlayfs").ok, false);
  assert.equal(report.backends.find((b) => b.name === "jail").available, false);
});

test("doctor: sandboxes with a network fail when nft is hidden, and say what to install", () => {
  if (!isRoot || !existsSync("/usr/sbin/nft")) return;
  const script = `mount --bind /dev/null /usr/sbin/nft && exec "$1" doctor --json --state-dir "$2"`;
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", binary, tempStateDir()],
    { encoding: "utf8", timeout: 60_000 });
  const net = check(JSON.parse(r.stdout), "network");
  assert.equal(net.ok, false, r.stderr);
  assert.match(net.detail, /\/usr\/sbin\/nft/);
  assert.match(net.fix, /nftables/);
});

// ---- mcp-config ------------------------------------------------------------------------

test("mcp-config: stdio in each client's format, consistent with examples/", () => {
  const stateDir = tempStateDir();
  const expectArgs = ["mcp", "--state-dir", stateDir];
  const parsed = {};
  for (const client of ["claude", "cursor", "vscode", "json"]) {
    const r = warren(["mcp-config", client, "--state-dir", stateDir]);
    assert.equal(r.status, 0, r.stderr);
    parsed[client] = JSON.parse(r.stdout);
  }
  assert.deepEqual(parsed.claude, { type: "stdio", command: binary, args: expectArgs });
  assert.deepEqual(parsed.cursor, { mcpServers: { warren: { command: binary, args: expectArgs } } });
  assert.deepEqual(parsed.vscode, { servers: { warren: { type: "stdio", command: binary, args: expectArgs } } });
  assert.deepEqual(parsed.json, { name: "warren", transport: "stdio", command: binary, args: expectArgs });
  // A relative --state-dir becomes absolute (the client starts warren elsewhere).
  const relative = spawnSync(binary, ["mcp-config", "json", "--state-dir", "rel/state"], { cwd: stateDir, encoding: "utf8" });
  assert.deepEqual(JSON.parse(relative.stdout).args, ["mcp", "--state-dir", join(stateDir, "rel/state")]);
  // The example Cursor file uses the same keys for its stdio and HTTP entries.
  const example = JSON.parse(readFileSync(join(repoRoot, "examples/cursor-mcp.json"), "utf8"));
  assert.deepEqual(Object.keys(example.mcpServers.warren).sort(), Object.keys(parsed.cursor.mcpServers.warren).sort());
  assert.deepEqual(example.mcpServers.warren.args.slice(0, 2), expectArgs.slice(0, 2));
  const vscode = JSON.parse(readFileSync(join(repoRoot, "examples/vscode-mcp.json"), "utf8"));
  assert.deepEqual(Object.keys(vscode.servers.warren).sort(), Object.keys(parsed.vscode.servers.warren).sort());
  assert.equal(vscode.servers.warren.type, "stdio");
});

test("mcp-config: --http with the state dir's token; refusals", () => {
  const stateDir = tempStateDir();
  const url = "http://127.0.0.1:8080/mcp";
  const none = warren(["mcp-config", "claude", "--http", url, "--state-dir", stateDir], { WARREN_TOKEN: "" });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no bearer token/);
  assert.equal(none.stdout, "");
  const token = "f".repeat(64);
  writeFileSync(join(stateDir, "token"), token + "\n", { mode: 0o600 });
  const headers = { Authorization: `Bearer ${token}` };
  const get = (client) => {
    const r = warren(["mcp-config", client, "--http", url, "--state-dir", stateDir], { WARREN_TOKEN: "" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  assert.deepEqual(get("claude"), { type: "http", url, headers });
  assert.deepEqual(get("cursor"), { mcpServers: { warren: { url, headers } } });
  assert.deepEqual(get("vscode"), { servers: { warren: { type: "http", url, headers } } });
  assert.deepEqual(get("json"), { name: "warren", transport: "http", url, headers });
  const example = JSON.parse(readFileSync(join(repoRoot, "examples/cursor-mcp.json"), "utf8"));
  assert.deepEqual(Object.keys(example.mcpServers["warren-http"]).sort(), Object.keys(get("cursor").mcpServers.warren).sort());
  const vscode = JSON.parse(readFileSync(join(repoRoot, "examples/vscode-mcp.json"), "utf8"));
  assert.deepEqual(Object.keys(vscode.servers["warren-http"]).sort(), Object.keys(get("vscode").servers.warren).sort());
  // $WARREN_TOKEN wins, as it does for the server.
  const env = warren(["mcp-config", "json", "--http", url, "--state-dir", stateDir], { WARREN_TOKEN: "e".repeat(40) });
  assert.equal(JSON.parse(env.stdout).headers.Authorization, `Bearer ${"e".repeat(40)}`);
  for (const bad of [["mcp-config"], ["mcp-config", "emacs"], ["mcp-config", "claude", "extra"],
    ["mcp-config", "claude", "--http", "ftp://host/mcp"], ["mcp-config", "claude", "--http", "http://a b/mcp"],
    ["mcp-config", "claude", "--http", "http://" + "a".repeat(3000)]]) {
    const r = warren(bad);
    assert.equal(r.status, 2, `${bad.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
  }
});

test("mcp-config claude: the stdio config launched by the SDK lists warren's tools", async () => {
  if (!isRoot) return; // the server needs a backend: the jail needs root here
  const stateDir = tempStateDir();
  const config = JSON.parse(warren(["mcp-config", "claude", "--state-dir", stateDir]).stdout);
  const transport = new StdioClientTransport({ command: config.command, args: config.args, env: getDefaultEnvironment(), stderr: "pipe" });
  const client = new Client({ name: "mcp-config-test", version: "0.1.0" });
  onCleanup(() => client.close());
  await client.connect(transport);
  const { tools } = await client.listTools();
  for (const name of ["sandbox_create", "sandbox_exec", "sandbox_read_file"])
    assert.ok(tools.some((t) => t.name === name), name);
  await client.close();
});

test("mcp-config vscode --http: the URL and header reach a running warren serve", async () => {
  if (!isRoot) return;
  const stateDir = tempStateDir();
  const token = "a1".repeat(20);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, "token"), token, { mode: 0o600 });
  const server = await startHttpServer({ stateDir, token });
  const config = JSON.parse(warren(["mcp-config", "vscode", "--http", server.url, "--state-dir", stateDir], { WARREN_TOKEN: "" }).stdout);
  const entry = config.servers.warren;
  const transport = new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers: entry.headers } });
  const client = new Client({ name: "mcp-config-test", version: "0.1.0" });
  onCleanup(() => client.close());
  await client.connect(transport);
  assert.ok((await client.listTools()).tools.some((t) => t.name === "sandbox_create"));
  await client.close();
});
