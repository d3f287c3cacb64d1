// What a sandbox's network reaches, per mode and backend. A test "internet" is a network
// namespace this test makes, joined to the host by a veth pair on documentation addresses
// (198.51.100.0/30), serving HTTP on 203.0.113.10 and on the private 10.99.99.1 (routable
// from the host: only the sandbox's rules keep it out). The host serves on its loopback,
// on its own address and on an abstract unix socket. No traffic leaves the machine.
//
//   network: false  nothing but the sandbox's own loopback
//   network: true   the internet; never the host (loopback, own addresses, abstract
//                   sockets), private ranges, link-local (cloud metadata), by IP or name
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import { promisify } from "node:util";
import { join } from "node:path";

import {
  callTool,
  connectStdio,
  onCleanup,
  skip,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
} from "../integration/lib/harness.mjs";

skipUnlessRoot("the network probes need root (network namespaces, the jail)");
for (const bin of ["/usr/bin/slirp4netns", "/usr/sbin/nft", "/usr/bin/curl"])
  if (!existsSync(bin)) skip(`${bin} is not installed (tools/setup.sh installs it)`);

const execFileAsync = promisify(execFile);
const tag = randomBytes(3).toString("hex");
const ns = `warren-inet-${tag}`;
const hostIf = `wi${tag}h`;
const ip = (...args) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

// ---- the test internet and what the host offers -----------------------------------------

const listen = (server, ...args) =>
  new Promise((resolve, reject) => server.once("error", reject).listen(...args, resolve));
const hostServer = createHttpServer((q, r) => r.end("host\n"));
await listen(hostServer, 0, "0.0.0.0");
onCleanup(() => hostServer.close());
const hostPort = hostServer.address().port;
const abstractName = `warren-sec-${tag}`;
const abstractServer = createServer((s) => s.end("abstract\n"));
await listen(abstractServer, `\0${abstractName}`);
onCleanup(() => abstractServer.close());
const hostAddr = Object.values(networkInterfaces())
  .flat()
  .find((a) => a.family === "IPv4" && !a.internal && !a.address.startsWith("198.51.100."))?.address;

test("the test internet is up, and everything answers from the host", async () => {
  assert.ok(hostAddr, "the host has an address of its own");
  ip("netns", "add", ns);
  onCleanup(() => ip("netns", "del", ns));
  ip("link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns);
  onCleanup(() => {
    try {
      ip("link", "del", hostIf);
    } catch {}
  });
  ip("addr", "add", "198.51.100.1/30", "dev", hostIf);
  ip("link", "set", hostIf, "up");
  ip("-n", ns, "addr", "add", "198.51.100.2/30", "dev", "eth0");
  ip("-n", ns, "link", "set", "eth0", "up");
  ip("-n", ns, "link", "set", "lo", "up");
  for (const a of ["203.0.113.10/32", "10.99.99.1/32"]) ip("-n", ns, "addr", "add", a, "dev", "lo");
  ip("-n", ns, "route", "add", "default", "via", "198.51.100.1");
  for (const a of ["203.0.113.10/32", "10.99.99.1/32"]) {
    ip("route", "add", a, "via", "198.51.100.2");
    onCleanup(() => {
      try {
        ip("route", "del", a);
      } catch {}
    });
  }
  const internet = spawn("ip", ["netns", "exec", ns, process.execPath, "-e",
    "require('http').createServer((q, r) => r.end('internet ' + q.socket.localAddress + '\\n')).listen(80, '0.0.0.0', () => console.log('up'))"],
    { stdio: ["ignore", "pipe", "inherit"] });
  onCleanup(() => internet.kill("SIGKILL"));
  await new Promise((resolve) => internet.stdout.once("data", resolve));
  // From the host all of it answers: a probe that fails in a sandbox fails because of the
  // sandbox.
  // (curl runs asynchronously: the host's servers are in this process.)
  const fromHost = async (url) => (await execFileAsync("curl", ["-sS", "-m", "5", url])).stdout;
  assert.equal(await fromHost("http://203.0.113.10/"), "internet 203.0.113.10\n");
  assert.equal(await fromHost("http://10.99.99.1/"), "internet 10.99.99.1\n");
  assert.equal(await fromHost(`http://127.0.0.1:${hostPort}/`), "host\n");
  assert.equal(await fromHost(`http://${hostAddr}:${hostPort}/`), "host\n");
});

// One exec runs every probe and prints "<name>=<answer or FAIL>".
const probes = {
  internet: "http://203.0.113.10/",
  "host loopback": `http://127.0.0.1:${hostPort}/`,
  "host loopback by name": `http://localhost:${hostPort}/`,
  "host's own address": `http://${hostAddr}:${hostPort}/`,
  "gateway (10.0.2.2)": `http://10.0.2.2:${hostPort}/`,
  "private address": "http://10.99.99.1/",
  "cloud metadata": "http://169.254.169.254/",
};
const script = [
  ...Object.entries(probes).map(
    ([name, url]) => `out=$(curl -sS -m 3 ${url} 2>/dev/null | head -c 40); echo "${name}=\${out:-FAIL}"`,
  ),
  `printf 'abstract socket='; node -e "const s=require('net').connect('\\\\0${abstractName}'); s.on('data',d=>{process.stdout.write(d);process.exit(0)}); s.on('error',()=>{console.log('FAIL');process.exit(0)})"`,
].join("\n");
function answers(stdout) {
  const out = {};
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return out;
}
const unreachable = ["host loopback", "host loopback by name", "host's own address", "gateway (10.0.2.2)",
  "private address", "cloud metadata", "abstract socket"];

async function probe(client, id) {
  const r = await callTool(client, "sandbox_exec", { id, command: script, timeout_seconds: 120 }, { timeout: 180_000 });
  return answers(r.stdout);
}

// ---- the jail ----------------------------------------------------------------------------------

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const jail = await connectStdio({ stateDir });

test("jail, network: false: nothing but its own loopback", async () => {
  const sb = await callTool(jail, "sandbox_create", { name: "offline" });
  const a = await probe(jail, sb.id);
  for (const name of ["internet", ...unreachable]) assert.equal(a[name], "FAIL", `${name}: ${a[name]}`);
  await callTool(jail, "sandbox_destroy", { id: sb.id });
});

test("jail, network: true: the internet, never the host or private ranges", async () => {
  const sb = await callTool(jail, "sandbox_create", { name: "online", network: true });
  const a = await probe(jail, sb.id);
  assert.equal(a.internet, "internet 203.0.113.10", JSON.stringify(a));
  for (const name of unreachable) assert.equal(a[name], "FAIL", `${name}: ${a[name]}`);
  // The rules are out of the sandbox's reach: root inside has no CAP_NET_ADMIN.
  const r = await callTool(jail, "sandbox_exec", { id: sb.id, command: "nft flush ruleset; ip link set tap0 down" });
  assert.notEqual(r.exit_code, 0);
  assert.equal((await probe(jail, sb.id))["private address"], "FAIL");
  await callTool(jail, "sandbox_destroy", { id: sb.id });
  await waitFor("slirp4netns gone with the sandbox", () => {
    const out = execFileSync("ps", ["-eo", "args"]).toString();
    return !out.split("\n").some((l) => l.startsWith("slirp4netns") && l.includes(sb.pid));
  });
});

// ---- qemu ---------------------------------------------------------------------------------------

const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
test("qemu, network: true: the internet, never the host or private ranges", async () => {
  if (!existsSync(join(guestDir, "vmlinuz")) || !existsSync("/usr/lib/qemu/virtiofsd")) skip("no guest kernel or virtiofsd");
  const vmState = tempStateDir();
  sweepSandboxesAtEnd(vmState);
  const vm = await connectStdio({ stateDir: vmState, args: ["--backend", "qemu"], env: { WARREN_QEMU_ACCEL: "tcg" } });
  const sb = await callTool(vm, "sandbox_create", { name: "vm-online", network: true }, { timeout: 180_000 });
  const a = await probe(vm, sb.id);
  assert.equal(a.internet, "internet 203.0.113.10", JSON.stringify(a));
  for (const name of unreachable) assert.equal(a[name], "FAIL", `${name}: ${a[name]}`);
  await callTool(vm, "sandbox_destroy", { id: sb.id });
  await waitFor("slirp4netns gone with QEMU", () => !execFileSync("ps", ["-eo", "args"]).toString().includes(`slirp4netns`) ||
    !execFileSync("ps", ["-eo", "args"]).toString().split("\n").some((l) => l.startsWith("slirp4netns") && l.includes(String(sb.pid))));
  await vm.close();
}, { timeoutMs: 400_000 });
