// The web UI's port links on a QEMU VM (TCG where /dev/kvm is unusable), with one VM: a
// server inside (python3 -m http.server, and a small WebSocket echo server) is reached
// through /sandboxes/<id>/ports/<port>/<token>/, which on a VM is a forward added to QEMU's
// user network over QMP. Then the VM is restarted (sandbox_restart): its files are kept,
// its processes are gone, and it serves again once a server is started anew.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

import {
  callTool,
  callToolError,
  connectHttp,
  skip,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot("the qemu backend needs root (virtiofsd)");
const onPath = (bin) => (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => existsSync(join(d, bin)));
if (!onPath("qemu-system-x86_64")) skip("qemu-system-x86_64 is not installed");
if (!existsSync("/usr/lib/qemu/virtiofsd")) skip("/usr/lib/qemu/virtiofsd is not installed");
const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
if (!existsSync(join(guestDir, "vmlinuz"))) skip(`no guest kernel in ${guestDir} (run tools/build-guest-kernel.sh)`);
process.env.WARREN_GUEST_DIR = guestDir;
process.env.WARREN_QEMU_ACCEL ??= "tcg";

const BOOT_TIMEOUT_MS = 300_000;
const token = "ports-vm-token-0123456789";
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
// "--backend qemu" after the harness's "--backend jail": getopt keeps the last one.
const server = await startHttpServer({ stateDir, token, args: ["--backend", "qemu"] });
const base = server.url.replace(/\/mcp$/, "");
const agent = await connectHttp(server.url, token);
const call = (name, args) => callTool(agent, name, args, { timeout: BOOT_TIMEOUT_MS });

// Signed in as the browser is: the session cookie and the CSRF token.
const login = await fetch(`${base}/api/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
assert.equal(login.status, 200);
const cookie = login.headers.get("set-cookie").split(";")[0];
const { csrf } = await login.json();
const portLink = async (sandbox, port) => {
  const r = await fetch(`${base}/api/ports`, { method: "POST",
    headers: { "Content-Type": "application/json", Cookie: cookie, "X-CSRF-Token": csrf, Origin: base },
    body: JSON.stringify({ sandbox, port }) });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return new URL(body.url, base).pathname;
};

// A WebSocket echo server in Python's standard library (the guest has no websockets module):
// it answers every text message with "echo:" and the message.
const ECHO_SERVER = `
import base64, hashlib, socket, struct, threading
def serve(c):
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        d = c.recv(4096)
        if not d: return
        data += d
    key = [l.split(b":", 1)[1].strip() for l in data.split(b"\\r\\n") if l.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: " + accept + b"\\r\\n\\r\\n")
    buf = b""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            d = c.recv(4096)
            if not d: raise EOFError
            buf += d
        r, buf = buf[:n], buf[n:]
        return r
    try:
        while True:
            b0, b1 = need(2)
            op, n = b0 & 15, b1 & 127
            if n == 126: n = struct.unpack(">H", need(2))[0]
            elif n == 127: n = struct.unpack(">Q", need(8))[0]
            mask = need(4) if b1 & 128 else b"\\0\\0\\0\\0"
            p = bytes(x ^ mask[i % 4] for i, x in enumerate(need(n)))
            if op == 8:
                c.sendall(b"\\x88\\x00")
                return
            if op == 1:
                reply = b"echo:" + p
                c.sendall(bytes([0x81]) + (bytes([len(reply)]) if len(reply) < 126 else b"\\x7e" + struct.pack(">H", len(reply))) + reply)
    except EOFError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8765))
s.listen(8)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

// One text message through warren's relay, with Node's sockets (Node 20 has no WebSocket
// client): the upgrade, a masked frame out, the server's frame back.
function wsEcho(path, text) {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const sock = connect(Number(port), hostname);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error("no echo within 30 s")); }, 30_000);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n\r\n`));
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101/.test(head)) { clearTimeout(timer); sock.destroy(); return reject(new Error(head)); }
        upgraded = true;
        buf = buf.subarray(end + 4);
        const payload = Buffer.from(text);
        const mask = randomBytes(4);
        sock.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4])]));
      }
      if (buf.length >= 2 && buf.length >= 2 + (buf[1] & 127)) {
        clearTimeout(timer);
        resolve(buf.subarray(2, 2 + (buf[1] & 127)).toString());
        sock.destroy();
      }
    });
    sock.on("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

// Starts servers in the VM and waits (Python under TCG starts slowly) until each port listens.
async function startServers(id, start, ports) {
  const wait = ports.map((p) => `(echo > /dev/tcp/127.0.0.1/${p}) 2>/dev/null`).join(" && ");
  const r = await call("sandbox_exec", { id, timeout_seconds: 240, argv: ["bash", "-c",
    `cd /workspace && ${start}; for i in $(seq 1200); do if ${wait}; then echo up; exit 0; fi; sleep 0.2; done; ` +
    "echo never came up; cat /tmp/*.log; exit 1"] });
  assert.equal(r.exit_code, 0, r.stdout + r.stderr);
}

let vm;
test("a VM's HTTP server and WebSocket server open through their port links", async () => {
  vm = await call("sandbox_create", { name: "ports-vm", ttl_seconds: 1800 });
  assert.equal(vm.backend, "qemu");
  await call("sandbox_write_file", { id: vm.id, path: "index.html", content: "<h1>served from the VM</h1>\n" });
  await call("sandbox_write_file", { id: vm.id, path: "/root/echo.py", content: ECHO_SERVER });
  // Nothing listens yet: the link is refused with the reason.
  const early = await portLink(vm.id, 8000);
  const refused = await fetch(`${base}${early}`);
  assert.equal(refused.status, 502);
  assert.match(await refused.text(), /nothing answered on port 8000/);
  await startServers(vm.id, "(setsid python3 -m http.server 8000 >/tmp/http.log 2>&1 < /dev/null &); " +
    "(setsid python3 /root/echo.py >/tmp/echo.log 2>&1 < /dev/null &)", [8000, 8765]);
  const path = await portLink(vm.id, 8000);
  assert.match(path, new RegExp(`^/sandboxes/${vm.id}/ports/8000/[0-9a-f]{32}/$`));
  const page = await fetch(`${base}${path}index.html`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-security-policy") ?? "", /sandbox/);
  assert.equal(await page.text(), "<h1>served from the VM</h1>\n");
  // The link itself is the server's "/" (http.server answers it with index.html).
  assert.equal(await (await fetch(`${base}${path}`)).text(), "<h1>served from the VM</h1>\n");
  // Twice: the second link reuses QEMU's forward.
  assert.equal((await fetch(`${base}${await portLink(vm.id, 8000)}index.html`)).status, 200);
  // Without the link's token: refused.
  assert.equal((await fetch(`${base}/sandboxes/${vm.id}/ports/8000/`)).status, 403);
  const ws = await portLink(vm.id, 8765);
  assert.equal(await wsEcho(ws, "hello through QEMU"), "echo:hello through QEMU");
}, { timeoutMs: 900_000 });

test("restart on a VM: the machine boots again, files kept, processes and their ports gone", async () => {
  const before = (await call("sandbox_list", {})).sandboxes.find((s) => s.id === vm.id);
  const again = await call("sandbox_restart", { id: vm.id });
  assert.equal(again.state, "running");
  assert.notEqual(again.pid, before.pid, "QEMU was not started again");
  const r = await call("sandbox_exec", { id: vm.id, command: "cat /workspace/index.html; (echo > /dev/tcp/127.0.0.1/8000) 2>/dev/null && echo still-listening || echo gone" });
  assert.equal(r.stdout, "<h1>served from the VM</h1>\ngone\n");
  // The new QEMU has no forward yet: a link adds it again, and a server started anew answers.
  await startServers(vm.id, "(setsid python3 -m http.server 8000 >/tmp/http.log 2>&1 < /dev/null &)", [8000]);
  const path = await portLink(vm.id, 8000);
  assert.equal(await (await fetch(`${base}${path}index.html`)).text(), "<h1>served from the VM</h1>\n");
  await call("sandbox_destroy", { id: vm.id });
  assert.match(await callToolError(agent, "sandbox_restart", { id: vm.id }), /no sandbox/);
  await agent.close();
}, { timeoutMs: 900_000 });
