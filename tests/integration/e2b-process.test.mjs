// envd's process.Process service driven by the real `e2b` SDK (pinned in package.json)
// against `warren serve` (jail backend): commands.run with callbacks and exit codes, envs
// and cwd, a background command listed, reconnected, fed stdin and killed, a PTY session,
// the same sandbox seen through MCP, and bad input over raw HTTP. WARREN_E2B_QEMU=1 adds
// one commands.run on a QEMU VM sandbox.
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  connectHttp,
  skip,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
} from "./lib/harness.mjs";

skipUnlessRoot();
const { Sandbox, CommandExitError } = await import("e2b");

const token = "e2b_" + randomBytes(20).toString("hex");
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const server = await startHttpServer({ stateDir, token });
const base = server.url.replace(/\/mcp$/, "");
process.env.E2B_API_URL = base;
process.env.E2B_SANDBOX_URL = base;
process.env.E2B_API_KEY = token;
const mcp = await connectHttp(server.url, token);

let sbx; // the sandbox most cases share
const envdHeaders = (id) => ({
  "E2b-Sandbox-Id": id,
  "E2b-Sandbox-Port": "49983",
  "X-Access-Token": createHmac("sha256", token).update(`envd:${id}`).digest("hex"),
});

// A Connect streaming request body: one envelope (flag, big-endian length, JSON).
function envelope(obj, flags = 0) {
  const json = Buffer.from(JSON.stringify(obj));
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

// The messages of a Connect stream response.
function envelopes(buf) {
  const out = [];
  for (let off = 0; off + 5 <= buf.length; ) {
    const n = buf.readUInt32BE(off + 1);
    out.push({ flags: buf[off], json: JSON.parse(buf.subarray(off + 5, off + 5 + n).toString()) });
    off += 5 + n;
  }
  return out;
}

async function rpc(method, body, { stream = false, raw = null } = {}) {
  const res = await fetch(`${base}/process.Process/${method}`, {
    method: "POST",
    headers: {
      ...envdHeaders(sbx.sandboxId),
      "Content-Type": stream ? "application/connect+json" : "application/json",
      "Connect-Protocol-Version": "1",
    },
    body: raw ?? (stream ? envelope(body) : JSON.stringify(body)),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, buf, json: stream ? envelopes(buf) : JSON.parse(buf.toString() || "{}") };
}

// Starts a process with a raw Start stream, reads its start event and hangs up.
async function startAndLeave(body) {
  const ac = new AbortController();
  const res = await fetch(`${base}/process.Process/Start`, {
    method: "POST",
    signal: ac.signal,
    headers: { ...envdHeaders(sbx.sandboxId), "Content-Type": "application/connect+json" },
    body: envelope(body),
  });
  const reader = res.body.getReader();
  let buf = Buffer.alloc(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended early: ${buf}`);
    buf = Buffer.concat([buf, value]);
    const first = envelopes(buf)[0];
    if (first && buf.length >= 5 + buf.readUInt32BE(1)) {
      ac.abort();
      return first.json.event.start.pid;
    }
  }
}

test("Sandbox.create, then commands.run with onStdout/onStderr", async () => {
  sbx = await Sandbox.create({ timeoutMs: 600_000 });
  const out = [];
  const err = [];
  const r = await sbx.commands.run("echo hello; echo oops >&2; printf 'a\\nb\\n'", {
    onStdout: (d) => out.push(d),
    onStderr: (d) => err.push(d),
  });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, "hello\na\nb\n");
  assert.equal(r.stderr, "oops\n");
  assert.equal(out.join(""), "hello\na\nb\n");
  assert.equal(err.join(""), "oops\n");
});

test("an exit code other than 0 throws CommandExitError", async () => {
  await assert.rejects(
    () => sbx.commands.run("echo failing >&2; exit 3"),
    (e) => {
      assert.ok(e instanceof CommandExitError, `not a CommandExitError: ${e}`);
      assert.equal(e.exitCode, 3);
      assert.equal(e.stderr, "failing\n");
      return true;
    },
  );
});

test("envs and cwd", async () => {
  await sbx.commands.run("mkdir -p /tmp/e2b-cwd");
  const r = await sbx.commands.run('echo "$GREETING $OTHER"; pwd', {
    envs: { GREETING: "hi there", OTHER: "x=y" },
    cwd: "/tmp/e2b-cwd",
  });
  assert.equal(r.stdout, "hi there x=y\n/tmp/e2b-cwd\n");
  // A directory that does not exist fails the start, clearly.
  await assert.rejects(() => sbx.commands.run("true", { cwd: "/no/such/dir" }), /no\/such\/dir/);
});

test("users: root, E2B's default 'user' (the sandbox's default user), an unknown one", async () => {
  assert.equal((await sbx.commands.run("id -un", { user: "root" })).stdout, "root\n");
  // The host image has no account 'user': it maps to the sandbox's default user (root here).
  assert.equal((await sbx.commands.run("id -u", { user: "user" })).stdout, "0\n");
  assert.equal((await sbx.commands.run("id -un", { user: "nobody" })).stdout, "nobody\n");
  await assert.rejects(() => sbx.commands.run("true", { user: "no-such-account" }), /no-such-account|user/);
});

test("a large output arrives whole (flow control through the window)", async () => {
  const r = await sbx.commands.run("head -c 3000000 /dev/zero | tr '\\0' x");
  assert.equal(r.stdout.length, 3_000_000);
  assert.ok(/^x+$/.test(r.stdout));
});

test("a slow reader holds the process back, not warren's memory", async () => {
  const rssMiB = () => Number(readFileSync(`/proc/${server.process.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;
  const before = rssMiB();
  const total = 64 * 1024 * 1024;
  const res = await fetch(`${base}/process.Process/Start`, {
    method: "POST",
    headers: { ...envdHeaders(sbx.sandboxId), "Content-Type": "application/connect+json" },
    body: envelope({ process: { cmd: "head", args: ["-c", String(total), "/dev/zero"] }, stdin: false }),
  });
  const reader = res.body.getReader();
  let buf = Buffer.alloc(0);
  let got = 0;
  let peak = 0;
  let paused = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf = Buffer.concat([buf, value]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const n = buf.readUInt32BE(1);
      const msg = JSON.parse(buf.subarray(5, 5 + n).toString());
      buf = buf.subarray(5 + n);
      if (msg.event?.data) got += Buffer.from(msg.event.data.stdout, "base64").length;
    }
    // Stop reading for 3 s a quarter of the way in: the sandbox must stop sending.
    if (!paused && got > total / 4) {
      paused = true;
      await new Promise((r) => setTimeout(r, 3000));
    }
    peak = Math.max(peak, rssMiB());
  }
  assert.equal(got, total);
  const grew = peak - before;
  console.log(`# 64 MiB through a stream with a 3 s stall: warren's RSS grew ${grew.toFixed(1)} MiB at most`);
  assert.ok(grew < 24, `warren's RSS grew ${grew.toFixed(1)} MiB`);
});

test("background command: listed, reconnected, stdin, killed", async () => {
  const h = await sbx.commands.run("cat; echo done-cat", { background: true, stdin: true });
  assert.ok(h.pid > 1, `pid ${h.pid}`);
  const listed = await sbx.commands.list();
  const mine = listed.find((p) => p.pid === h.pid);
  assert.ok(mine, `pid ${h.pid} not in ${JSON.stringify(listed)}`);
  assert.equal(mine.cmd, "/bin/bash");
  assert.deepEqual(mine.args, ["-l", "-c", "cat; echo done-cat"]);
  // The first stream disconnects: the process runs on.
  await h.disconnect();
  await new Promise((r) => setTimeout(r, 200));
  assert.ok((await sbx.commands.list()).some((p) => p.pid === h.pid), "gone after disconnect");

  const seen = [];
  const again = await sbx.commands.connect(h.pid, { onStdout: (d) => seen.push(d) });
  assert.equal(again.pid, h.pid);
  // A second stream follows the same process: both see the output from now on.
  const seen2 = [];
  const third = await sbx.commands.connect(h.pid, { onStdout: (d) => seen2.push(d) });
  await sbx.commands.sendStdin(h.pid, "line one\n");
  await waitFor("stdin echoed", () => seen.join("").includes("line one\n") && seen2.join("").includes("line one\n"));
  await sbx.commands.closeStdin(h.pid);
  const r = await again.wait();
  assert.equal(r.exitCode, 0);
  assert.match(seen.join(""), /line one\ndone-cat\n/);
  assert.equal((await third.wait()).stdout, "line one\ndone-cat\n");
  // Exited and delivered: no longer listed.
  assert.ok(!(await sbx.commands.list()).some((p) => p.pid === h.pid));

  // The SDK's commands take no tag: a raw Start does, whose client then goes away.
  const pid = await startAndLeave({ process: { cmd: "sleep", args: ["600"] }, tag: "sleeper", stdin: false });
  const l2 = await sbx.commands.list();
  assert.equal(l2.find((p) => p.pid === pid)?.tag, "sleeper");
  const byTag = await rpc("SendInput", { process: { tag: "sleeper" }, input: { stdin: "eA==" } });
  assert.match(byTag.json.message, /stdin/, "found by tag, and its stdin is not open");
  const sleeper = await sbx.commands.connect(pid);
  assert.equal(await sbx.commands.kill(pid), true);
  await assert.rejects(() => sleeper.wait(), (e) => e instanceof CommandExitError && e.exitCode === -1);
  assert.equal(await sbx.commands.kill(pid), false, "an unknown pid is not found");
});

test("sendStdin to a command without stdin is refused", async () => {
  const h = await sbx.commands.run("sleep 30", { background: true });
  await assert.rejects(() => sbx.commands.sendStdin(h.pid, "x"), /stdin/);
  await sbx.commands.kill(h.pid);
});

test("PTY: create, input, resize, output, kill", async () => {
  const chunks = [];
  const dec = new TextDecoder();
  const pty = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => chunks.push(dec.decode(d)) });
  const text = () => chunks.join("");
  await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("stty size; echo tty=$(tty)\n"));
  await waitFor("stty size", () => /24 80/.test(text()) && /tty=\/dev\/pts\//.test(text()));
  await sbx.pty.resize(pty.pid, { cols: 120, rows: 40 });
  await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("stty size\n"));
  await waitFor("resized", () => /40 120/.test(text()));
  assert.equal(await sbx.pty.kill(pty.pid), true);
  const r = await pty.wait().catch((e) => e);
  assert.equal(r.exitCode, -1);
});

test("the same sandbox through MCP sandbox_exec and the activity log", async () => {
  await sbx.commands.run("echo from-e2b > /tmp/e2b-mark");
  const r = await callTool(mcp, "sandbox_exec", { id: sbx.sandboxId, argv: ["cat", "/tmp/e2b-mark"] });
  assert.equal(r.stdout, "from-e2b\n");
  // What E2B ran is in the sandbox's activity, with its exit code and first output.
  await sbx.commands.run("echo recorded-output; exit 4").catch(() => {});
  const starts = async () =>
    (await callTool(mcp, "sandbox_events", { id: sbx.sandboxId, limit: 1000 })).events
      .filter((e) => e.kind === "tool")
      .map((e) => (typeof e.detail === "string" ? JSON.parse(e.detail) : e.detail))
      .filter((d) => d?.tool === "e2b process.Process/Start");
  let last;
  await waitFor("the Start recorded", async () => {
    last = (await starts()).find((d) => d.output?.includes("recorded-output"));
    return last;
  });
  assert.equal(last.exit_code, 4);
  assert.equal(last.client, "e2b");
});

test("bad input: malformed envelopes, unknown pid, oversized input; the server keeps serving", async () => {
  // A truncated envelope.
  let r = await rpc("Start", null, { stream: true, raw: Buffer.from([0, 0, 0, 0, 50, 123]) });
  assert.equal(r.status, 200);
  let last = r.json.at(-1);
  assert.equal(last.flags, 2);
  assert.equal(last.json.error.code, "invalid_argument");
  // Compressed flag.
  r = await rpc("Start", null, { stream: true, raw: envelope({ process: { cmd: "true" } }, 1) });
  assert.match(r.json.at(-1).json.error.message, /compressed/);
  // Not JSON inside.
  const junk = Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from("{{{")]);
  r = await rpc("Start", null, { stream: true, raw: junk });
  assert.equal(r.json.at(-1).json.error.code, "invalid_argument");
  // A StartRequest without a command.
  r = await rpc("Start", { process: { args: ["x"] } }, { stream: true });
  assert.match(r.json.at(-1).json.error.message, /process\.cmd/);
  // Unknown pid: not_found, for every unary method and Connect.
  r = await rpc("SendSignal", { process: { pid: 999999 }, signal: "SIGNAL_SIGKILL" });
  assert.equal(r.status, 404);
  assert.equal(r.json.code, "not_found");
  r = await rpc("SendInput", { process: { pid: 999999 }, input: { stdin: "eA==" } });
  assert.equal(r.json.code, "not_found");
  r = await rpc("Connect", { process: { pid: 999999 } }, { stream: true });
  assert.equal(r.json.at(-1).json.error.code, "not_found");
  r = await rpc("Connect", { process: { tag: "no-such-tag" } }, { stream: true });
  assert.equal(r.json.at(-1).json.error.code, "not_found");
  // Oversized input: a clear error, and the process is untouched.
  const h = await sbx.commands.run("cat", { background: true, stdin: true });
  const big = Buffer.alloc(70 * 1024, 0x61).toString("base64");
  r = await rpc("SendInput", { process: { pid: h.pid }, input: { stdin: big } });
  assert.equal(r.json.code, "resource_exhausted");
  assert.match(r.json.message, /64 KiB/);
  // Bad pid and signal values.
  r = await rpc("SendSignal", { process: { pid: -4 }, signal: 9 });
  assert.equal(r.json.code, "invalid_argument");
  r = await rpc("SendSignal", { process: { pid: h.pid }, signal: "SIGNAL_SIGSTOP" });
  assert.equal(r.json.code, "invalid_argument");
  // Unary call sent as a stream and vice versa.
  r = await rpc("List", {}, { stream: true });
  assert.equal(r.json.at(-1).json.error.code, "invalid_argument");
  // Still serving: the process is there and takes input.
  await sbx.commands.sendStdin(h.pid, "still\n");
  assert.ok((await sbx.commands.list()).some((p) => p.pid === h.pid));
  await sbx.commands.kill(h.pid);
  const ok = await sbx.commands.run("echo alive");
  assert.equal(ok.stdout, "alive\n");
});

test("keepalive events on a silent stream (Keepalive-Ping-Interval)", async () => {
  const ac = new AbortController();
  const res = await fetch(`${base}/process.Process/Start`, {
    method: "POST",
    signal: ac.signal,
    headers: {
      ...envdHeaders(sbx.sandboxId),
      "Content-Type": "application/connect+json",
      "Keepalive-Ping-Interval": "1",
    },
    body: envelope({ process: { cmd: "/bin/sh", args: ["-c", "sleep 2.5; echo late"] }, stdin: false }),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  const events = envelopes(buf).map((e) => e.json.event ?? e.json);
  assert.ok(events[0].start.pid > 1);
  assert.ok(events.filter((e) => e.keepalive).length >= 2, JSON.stringify(events));
  const data = events.find((e) => e.data);
  assert.equal(Buffer.from(data.data.stdout, "base64").toString(), "late\n");
  assert.equal(events.find((e) => e.end).end.exitCode ?? 0, 0);
});

test("qemu: commands.run on a VM sandbox", async () => {
  const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
  if (!process.env.WARREN_E2B_QEMU) skip("set WARREN_E2B_QEMU=1 (one TCG VM boot)");
  if (!existsSync("/usr/bin/qemu-system-x86_64") || !existsSync(join(guestDir, "vmlinuz")))
    skip("no qemu-system-x86_64 or no guest kernel");
  process.env.WARREN_GUEST_DIR = guestDir;
  process.env.WARREN_QEMU_ACCEL = process.env.WARREN_QEMU_ACCEL ?? "tcg";
  const vmState = tempStateDir();
  sweepSandboxesAtEnd(vmState);
  const vmServer = await startHttpServer({ stateDir: vmState, token, args: ["--backend", "qemu"] });
  const vmBase = vmServer.url.replace(/\/mcp$/, "");
  const vm = await Sandbox.create({ apiUrl: vmBase, sandboxUrl: vmBase, timeoutMs: 300_000, allowInternetAccess: false });
  try {
    const out = [];
    const r = await vm.commands.run("echo vm-out; echo vm-err >&2; exit 5", { onStdout: (d) => out.push(d) }).catch((e) => e);
    assert.ok(r instanceof CommandExitError, String(r));
    assert.equal(r.exitCode, 5);
    assert.equal(r.stdout, "vm-out\n");
    assert.equal(r.stderr, "vm-err\n");
    assert.equal(out.join(""), "vm-out\n");
  } finally {
    await vm.kill();
    await vmServer.stop();
  }
}, { timeoutMs: 400_000 });

test("kill the sandbox", async () => {
  await sbx.kill();
});
