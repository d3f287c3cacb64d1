// What a sandbox's network reaches, per mode and backend. A test "internet" is a network
// namespace this test makes, joined to the host by a veth pair on documentation addresses
// (198.51.100.0/30), serving HTTP on 203.0.113.10 and on the private 10.99.99.1 (routable
// from the host: only the sandbox's rules keep it out), and HTTPS on 203.0.113.10 with a
// certificate from a test CA. Names resolve through a hosts file given to warren's egress
// proxy (--egress-hosts). The host serves on its loopback, on its own address and on an
// abstract unix socket. No traffic leaves the machine.
//
//   network: false         nothing but the sandbox's own loopback
//   network: true          the internet; never the host (loopback, own addresses, abstract
//                          sockets), private ranges, link-local (cloud metadata), by IP or name
//   network: {allow: [..]} HTTP(S) to the listed names through the egress proxy, nothing
//                          else: not other names, not addresses, not a name that resolves to
//                          a private or host address, not a TLS session whose SNI is another
//                          name than the CONNECT host
//   sandbox_update         switches a running sandbox at once, cutting what the new mode
//                          forbids
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import { promisify } from "node:util";
import { join } from "node:path";

import {
  callTool,
  callToolError,
  connectStdio,
  onCleanup,
  skip,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  tempWorkDir,
  test,
  waitFor,
} from "../integration/lib/harness.mjs";

skipUnlessRoot("the network probes need root (network namespaces, the jail)");
for (const bin of ["/usr/bin/slirp4netns", "/usr/sbin/nft", "/usr/bin/curl", "/usr/bin/openssl"])
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

// A test CA and a server certificate for the names of 203.0.113.10.
const pki = tempWorkDir("warren-pki-");
const openssl = (...args) => execFileSync("openssl", args, { cwd: pki, stdio: ["ignore", "pipe", "pipe"] });
openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=warren test CA",
  "-keyout", "ca.key", "-out", "ca.pem");
openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=allowed.test", "-keyout", "server.key", "-out", "server.csr");
writeFileSync(join(pki, "san.ext"), "subjectAltName=DNS:allowed.test,DNS:other.test,DNS:www.wild.test\n");
openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
  "-extfile", "san.ext", "-out", "server.pem");
const caPem = readFileSync(join(pki, "ca.pem"), "utf8");

// What the egress proxy resolves: names of the internet, and names of what no sandbox reaches.
const hostsFile = join(pki, "hosts");
writeFileSync(hostsFile, [
  "203.0.113.10 allowed.test other.test www.wild.test",
  "10.99.99.1 private.test",
  "127.0.0.1 loop.test",
  "169.254.169.254 metadata.test",
  "",
].join("\n"));
const allowList = { allow: ["allowed.test", "*.wild.test", "private.test", "loop.test", "metadata.test"], deny: [] };

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
  // HTTP on 80 (with /slow: a byte every 100 ms for a minute) and HTTPS on 443.
  const server = `
    const http = require('http'), https = require('https'), fs = require('fs');
    const answer = (tag) => (q, r) => {
      if (q.url === '/slow') {
        let n = 0;
        const t = setInterval(() => { r.write('.'); if (++n === 600) { clearInterval(t); r.end(); } }, 100);
        r.on('close', () => clearInterval(t));
        return;
      }
      r.end(tag + ' ' + (tag === 'internet' ? q.socket.localAddress : q.headers.host) + '\\n');
    };
    http.createServer(answer('internet')).listen(80, '0.0.0.0', () =>
      https.createServer({ key: fs.readFileSync('${pki}/server.key'), cert: fs.readFileSync('${pki}/server.pem') },
        answer('internet-tls')).listen(443, '0.0.0.0', () => console.log('up')));`;
  const internet = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", server], { stdio: ["ignore", "pipe", "inherit"] });
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
  const tls = await execFileAsync("curl", ["-sS", "-m", "5", "--cacert", join(pki, "ca.pem"),
    "--resolve", "allowed.test:443:203.0.113.10", "https://allowed.test/"]);
  assert.equal(tls.stdout, "internet-tls allowed.test\n");
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
const jail = await connectStdio({ stateDir, args: ["--egress-hosts", hostsFile] });

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

// ---- the allow-list ------------------------------------------------------------------------------

// One exec runs the allow-list probes (the proxy variables are the sandbox's own); each
// prints "<name>=<answer or FAIL>".
const allowScript = [
  ["https allowed", "curl -fsS -m 5 --cacert /tmp/ca.pem https://allowed.test/"],
  ["http allowed", "curl -fsS -m 5 http://allowed.test/"],
  ["https wildcard", "curl -fsS -m 5 --cacert /tmp/ca.pem https://www.wild.test/"],
  ["https not listed", "curl -fsS -m 5 --cacert /tmp/ca.pem https://other.test/"],
  ["http not listed", "curl -fsS -m 5 http://other.test/"],
  ["name of a private address", "curl -fsS -m 5 http://private.test/"],
  ["name of the host loopback", "curl -fsS -m 5 http://loop.test/"],
  ["name of cloud metadata", "curl -fsS -m 5 http://metadata.test/"],
  ["address through the proxy", "curl -fsS -m 5 http://203.0.113.10/"],
  ["address bypassing the proxy", "curl -fsS -m 3 --noproxy '*' http://203.0.113.10/"],
  ["host loopback", `curl -fsS -m 3 --noproxy '*' http://127.0.0.1:${hostPort}/`],
  ["port 8080", "curl -fsS -m 5 http://allowed.test:8080/"],
].map(([name, cmd]) => `out=$(${cmd} 2>/dev/null | head -c 40); echo "${name}=\${out:-FAIL}"`)
  .concat([
    // The CONNECT host is allowed, the TLS server name is not: cut before the server answers.
    `p=\${https_proxy#http://}; for sni in allowed.test other.test; do n=$(openssl s_client -proxy $p -connect allowed.test:443 -servername $sni -CAfile /tmp/ca.pem </dev/null 2>/dev/null | grep -c 'Server certificate'); echo "sni $sni=$n"; done`,
    `printf 'abstract socket='; node -e "const s=require('net').connect('\\\\0${abstractName}'); s.on('data',d=>{process.stdout.write(d);process.exit(0)}); s.on('error',()=>{console.log('FAIL');process.exit(0)})"`,
  ]).join("\n");

function assertAllowList(a) {
  const all = JSON.stringify(a);
  assert.equal(a["https allowed"], "internet-tls allowed.test", all);
  assert.equal(a["http allowed"], "internet 203.0.113.10", all);
  assert.equal(a["https wildcard"], "internet-tls www.wild.test", all);
  for (const name of ["https not listed", "http not listed", "name of a private address", "name of the host loopback",
    "name of cloud metadata", "address through the proxy", "address bypassing the proxy", "host loopback", "port 8080",
    "abstract socket"])
    assert.equal(a[name], "FAIL", `${name}: ${all}`);
  assert.equal(a["sni allowed.test"], "1", `the SNI control: ${all}`);
  assert.equal(a["sni other.test"], "0", `a forged SNI: ${all}`);
}

async function probeAllowList(client, id) {
  await callTool(client, "sandbox_write_file", { id, path: "/tmp/ca.pem", content: caPem });
  const r = await callTool(client, "sandbox_exec", { id, command: allowScript, timeout_seconds: 150 }, { timeout: 200_000 });
  return answers(r.stdout);
}

// A download through the sandbox's current way out, running while the mode changes: it
// must end (cut), long before the server would have finished (a minute).
async function cutWhileRunning(client, id, url, network) {
  const started = Date.now();
  const running = callTool(client, "sandbox_exec", {
    id, command: `curl -sS -m 90 -o /dev/null ${url}; echo "rc=$?"`, timeout_seconds: 120 }, { timeout: 150_000 });
  await new Promise((r) => setTimeout(r, 2000));
  const updated = await callTool(client, "sandbox_update", { id, network });
  const r = await running;
  const seconds = (Date.now() - started) / 1000;
  assert.notEqual(r.stdout.trim(), "rc=0", `the download was not cut: ${r.stdout} ${r.stderr}`);
  assert.ok(seconds < 45, `cut only after ${seconds} s`);
  return updated;
}

test("jail, allow-list: the listed names over HTTP(S) through the proxy, nothing else; every connection is an event", async () => {
  const sb = await callTool(jail, "sandbox_create", { name: "listed", network: allowList });
  assert.deepEqual(sb.network, allowList);
  const listed = (await callTool(jail, "sandbox_list", {})).sandboxes.find((s) => s.id === sb.id);
  assert.deepEqual(listed.network, allowList, "sandbox_list shows the policy");
  const env = await callTool(jail, "sandbox_exec", { id: sb.id, command: "echo $https_proxy; cat /etc/apt/apt.conf.d/90warren-proxy" });
  assert.match(env.stdout, /^http:\/\/127\.0\.0\.1:3128\n/);
  assert.match(env.stdout, /Acquire::https::Proxy "http:\/\/127\.0\.0\.1:3128";/);
  assertAllowList(await probeAllowList(jail, sb.id));

  const { events } = await callTool(jail, "sandbox_events", { id: sb.id, kind: "egress" });
  const ok = events.find((e) => e.kind === "egress" && e.detail.host === "allowed.test" && e.detail.port === 443);
  assert.ok(ok && ok.detail.allowed && ok.detail.bytes_down > 0 && ok.detail.address === "203.0.113.10", JSON.stringify(events));
  const refused = (host, why) => events.find((e) => e.kind === "egress-refused" && e.detail.host === host && why.test(e.detail.reason));
  assert.ok(refused("other.test", /allow-list/), "a name off the list is an event");
  assert.ok(refused("private.test", /no sandbox may reach/), "a private address is an event");
  assert.ok(refused("203.0.113.10", /addresses are refused/), "an address is an event");
  assert.ok(events.find((e) => e.detail.host === "allowed.test" && /SNI/.test(e.detail.reason ?? "")), "a forged SNI is an event");
  await callTool(jail, "sandbox_destroy", { id: sb.id });
});

test("jail, sandbox_update: allow-list -> false -> true -> false -> allow-list, each at once, cutting what it forbids", async () => {
  const sb = await callTool(jail, "sandbox_create", { name: "switched", network: allowList });
  await callTool(jail, "sandbox_write_file", { id: sb.id, path: "/tmp/ca.pem", content: caPem });
  const run = async (command) => (await callTool(jail, "sandbox_exec", { id: sb.id, command })).stdout.trim();
  const tls = "curl -fsS -m 5 --cacert /tmp/ca.pem https://allowed.test/ 2>/dev/null || echo FAIL";
  const direct = "curl -fsS -m 3 --noproxy '*' http://203.0.113.10/ 2>/dev/null || echo FAIL";
  assert.equal(await run(tls), "internet-tls allowed.test");

  let updated = await cutWhileRunning(jail, sb.id, "http://allowed.test/slow", false);
  assert.equal(updated.network, false);
  assert.equal(await run(tls), "FAIL");
  assert.equal(await run("echo ${https_proxy:-none}"), "none");

  updated = await callTool(jail, "sandbox_update", { id: sb.id, network: true });
  assert.equal(updated.network, true);
  assert.equal(await run(direct), "internet 203.0.113.10");
  assert.equal(await run(`curl -fsS -m 3 http://10.99.99.1/ 2>/dev/null || echo FAIL`), "FAIL");

  await cutWhileRunning(jail, sb.id, "http://203.0.113.10/slow", false);
  assert.equal(await run(direct), "FAIL");

  updated = await callTool(jail, "sandbox_update", { id: sb.id, network: { allow: ["other.test"] } });
  assert.deepEqual(updated.network, { allow: ["other.test"], deny: [] });
  assert.equal(await run(tls), "FAIL", "allowed.test is off the new list");
  assert.equal(await run("curl -fsS -m 5 --cacert /tmp/ca.pem https://other.test/ 2>/dev/null || echo FAIL"), "internet-tls other.test");
  // A policy edit cuts the tunnels to hosts it drops.
  await callTool(jail, "sandbox_update", { id: sb.id, network: { allow: ["allowed.test"] } });
  await cutWhileRunning(jail, sb.id, "http://allowed.test/slow", { allow: ["other.test"] });

  const bad = await callToolError(jail, "sandbox_update", { id: sb.id, network: { allow: ["10.0.0.1"] } });
  assert.match(bad, /addresses are refused/);
  const kinds = (await callTool(jail, "sandbox_events", { id: sb.id, kind: "network" })).events.map((e) => e.detail);
  assert.equal(kinds.length, 6, JSON.stringify(kinds));
  await callTool(jail, "sandbox_destroy", { id: sb.id });
}, { timeoutMs: 300_000 });

// ---- qemu ---------------------------------------------------------------------------------------

const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
// One VM (boots are slow under TCG) goes through every mode: allow-list at boot, then
// sandbox_update to NAT and to nothing.
test("qemu: allow-list, then NAT, then nothing, switched while it runs", async () => {
  if (!existsSync(join(guestDir, "vmlinuz")) || !existsSync("/usr/lib/qemu/virtiofsd")) skip("no guest kernel or virtiofsd");
  const vmState = tempStateDir();
  sweepSandboxesAtEnd(vmState);
  const vm = await connectStdio({ stateDir: vmState, args: ["--backend", "qemu", "--egress-hosts", hostsFile],
    env: { WARREN_QEMU_ACCEL: "tcg" } });
  const sb = await callTool(vm, "sandbox_create", { name: "vm-listed", network: allowList }, { timeout: 180_000 });
  const env = await callTool(vm, "sandbox_exec", { id: sb.id, command: "echo $https_proxy" });
  assert.equal(env.stdout, "http://10.0.2.2:3128\n");
  assertAllowList(await probeAllowList(vm, sb.id));

  const nat = await callTool(vm, "sandbox_update", { id: sb.id, network: true });
  assert.equal(nat.network, true);
  const a = await probe(vm, sb.id);
  assert.equal(a.internet, "internet 203.0.113.10", JSON.stringify(a));
  for (const name of unreachable) assert.equal(a[name], "FAIL", `${name}: ${a[name]}`);

  await cutWhileRunning(vm, sb.id, "http://203.0.113.10/slow", false);
  const off = await probe(vm, sb.id);
  for (const name of ["internet", ...unreachable]) assert.equal(off[name], "FAIL", `${name}: ${off[name]}`);
  await callTool(vm, "sandbox_destroy", { id: sb.id });
  await waitFor("slirp4netns gone with QEMU", () =>
    !execFileSync("ps", ["-eo", "args"]).toString().split("\n").some((l) => l.startsWith("slirp4netns") && l.includes(String(sb.pid))));
  await vm.close();
}, { timeoutMs: 600_000 });
