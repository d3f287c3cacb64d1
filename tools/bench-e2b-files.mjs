#!/usr/bin/env node
// Figures for envd's files API through the real e2b SDK (a benchmark, not a test):
// files.write and files.read of a 16 MiB file against `warren serve` on the jail backend,
// in MB/s (target >= 200 each way), with the same through MCP sandbox_write_file /
// sandbox_read_file for comparison. Needs root and a build; run from the repository:
// node tools/bench-e2b-files.mjs [build dir]
//
// Besides wall-clock MB/s it prints the CPU time the transfer costs (the server, the
// sandbox's guest-init and this client, from /proc and process.cpuUsage): on a shared
// machine the wall clock measures the queue for the CPU, the CPU time what warren needs.
import { spawn } from "node:child_process";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const build = resolve(process.argv[2] ?? "build");
const require = createRequire(resolve("tests/integration/package.json"));
const { Sandbox } = require("e2b");

const state = mkdtempSync(join(tmpdir(), "warren-bench-e2b-files-"));
const token = `e2b_${randomBytes(16).toString("hex")}`;
const server = spawn(join(build, "warren"), ["serve", "--listen", "127.0.0.1:0", "--backend", "jail",
  "--state-dir", state, "--idle-pause-seconds", "0"], { env: { ...process.env, WARREN_TOKEN: token }, stdio: ["ignore", "ignore", "pipe"] });
const url = await new Promise((ok) => {
  let text = "";
  server.stderr.on("data", (d) => {
    text += d;
    const m = text.match(/listening on (http:\/\/\S+\/mcp)/);
    if (m) ok(m[1]);
  });
});
const base = url.replace(/\/mcp$/, "");
const sbx = await Sandbox.create("base", { apiUrl: base, sandboxUrl: base, apiKey: token, requestTimeoutMs: 120_000 });

// CPU seconds (user + system) a process has used.
const ticks = 100; // USER_HZ on Linux
function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / ticks;
}
// The sandbox's guest-init: the process named so in the sandbox's cgroup (/warren/<id>).
const guestInit = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).find((p) => {
  try {
    return readFileSync(`/proc/${p}/comm`, "utf8").trim() === "guest-init" &&
      readFileSync(`/proc/${p}/cgroup`, "utf8").includes(`/warren/${sbx.sandboxId}\n`);
  } catch { return false; }
});
if (!guestInit) throw new Error("the sandbox's guest-init was not found");
const cpuNow = () => ({ server: cpuOf(server.pid), guest: guestInit ? cpuOf(guestInit) : 0,
  client: (process.cpuUsage().user + process.cpuUsage().system) / 1e6 });

const SIZE = 16 * 1024 * 1024;
const ROUNDS = 7;
const data = new Uint8Array(randomBytes(SIZE));
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const mbps = (ms) => SIZE / 1e6 / (ms / 1000);

const cpu = {};
async function timed(name, fn) {
  const times = [];
  await fn(); // warm-up
  const c0 = cpuNow();
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  const c1 = cpuNow();
  cpu[name] = Object.fromEntries(Object.keys(c0).map((k) => [k, (c1[k] - c0[k]) / ROUNDS * 1000]));
  return median(times);
}
const cpuLine = (name) => {
  const c = cpu[name];
  const total = c.server + c.guest + c.client;
  return `  CPU per transfer: server ${c.server.toFixed(0)} ms, guest-init ${c.guest.toFixed(0)} ms, ` +
    `client ${c.client.toFixed(0)} ms; ${(SIZE / 1e6 / (total / 1000)).toFixed(0)} MB/s if all of it ran on one core, ` +
    `server alone ${(SIZE / 1e6 / (c.server / 1000)).toFixed(0)} MB/s`;
};

const writeMs = await timed("write", () => sbx.files.write("/tmp/bench.bin", data));
const writeOctetMs = await timed("octet", () => sbx.files.write("/tmp/bench-octet.bin",
  new ReadableStream({ start(c) { c.enqueue(data); c.close(); } })));
let back;
const readMs = await timed("read", async () => { back = await sbx.files.read("/tmp/bench.bin", { format: "bytes" }); });
// The same download with a plain fetch (no SDK), to tell the SDK's cost from warren's.
const rawUrl = `${base}/files?path=${encodeURIComponent("/tmp/bench.bin")}`;
const rawHeaders = { "E2b-Sandbox-Id": sbx.sandboxId, "X-Access-Token": sbx.envdAccessToken };
const rawMs = await timed("raw", async () => {
  const r = await fetch(rawUrl, { headers: rawHeaders });
  if ((await r.arrayBuffer()).byteLength !== SIZE) throw new Error("short download");
});
if (back.length !== SIZE || !Buffer.from(back).equals(Buffer.from(data))) throw new Error("read back differs");

// A reference for this machine at this moment: node's fetch of 16 MiB from a node HTTP
// server in this process (no warren, no sandbox). It bounds what the SDK can do here.
const ref = http.createServer((q, res) => {
  res.writeHead(200, { "Content-Length": SIZE });
  res.end(Buffer.from(data.buffer));
}).listen(0, "127.0.0.1");
await new Promise((r) => ref.once("listening", r));
const refMs = await timed("reference", async () => {
  await (await fetch(`http://127.0.0.1:${ref.address().port}/`)).arrayBuffer();
});
ref.close();

const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(`load average ${load} on ${(await import("node:os")).cpus().length} CPUs`);
console.log(`files.write 16 MiB (multipart/form-data): median ${writeMs.toFixed(0)} ms, ${mbps(writeMs).toFixed(0)} MB/s (target >= 200)`);
console.log(cpuLine("write"));
console.log(`files.write 16 MiB (application/octet-stream, a stream): median ${writeOctetMs.toFixed(0)} ms, ${mbps(writeOctetMs).toFixed(0)} MB/s`);
console.log(cpuLine("octet"));
console.log(`files.read 16 MiB: median ${readMs.toFixed(0)} ms, ${mbps(readMs).toFixed(0)} MB/s (target >= 200)`);
console.log(cpuLine("read"));
console.log(`GET /files 16 MiB with a plain fetch: median ${rawMs.toFixed(0)} ms, ${mbps(rawMs).toFixed(0)} MB/s`);
console.log(cpuLine("raw"));
console.log(`reference, no warren: node fetch of 16 MiB from a node HTTP server in this process: ` +
  `median ${refMs.toFixed(0)} ms, ${mbps(refMs).toFixed(0)} MB/s (client ${cpu.reference.client.toFixed(0)} ms CPU, server included)`);
await sbx.kill();
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
rmSync(state, { recursive: true, force: true });
