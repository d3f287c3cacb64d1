#!/usr/bin/env node
// Figures for the web UI (a benchmark, not a test): the first load of / (bytes transferred,
// gzip), how long the sandbox table takes to show 200 sandboxes (with the list's fetch, and
// the render alone), the terminal's keystroke echo round trip against sandbox_exec of
// /bin/true, and warren's memory while `yes | head -c 50000000` streams through a terminal. Needs root, a build, and
// Debian's chromium; run from the repository: node tools/bench-web.mjs [build dir]
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const build = resolve(process.argv[2] ?? "build");
const require = createRequire(resolve("tests/integration/package.json"));
const { chromium } = require("playwright-core");
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const state = mkdtempSync(join(tmpdir(), "warren-bench-web-"));
const token = "bench-web-token";
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
const mcp = new Client({ name: "bench-web", version: "1" });
await mcp.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
const call = async (name, args) => (await mcp.callTool({ name, arguments: args })).structuredContent;
const p50 = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];

const N = 200;
let first;
for (let i = 0; i < N; i++) {
  const sb = await call("sandbox_create", { name: `bench-${i}` });
  first ??= sb;
}
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
await page.goto(base);
await page.getByLabel("Server token").fill(token);
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByText("New sandbox").waitFor();
// A fresh load in a new browser context (nothing cached) with the sign-in's cookie: the
// bytes of everything / loads, and the table of 200.
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
await ctx.addCookies(await page.context().cookies());
const fresh = await ctx.newPage();
const started = Date.now();
await fresh.goto(base);
await fresh.locator("table.sandboxes tbody tr").nth(N - 1).waitFor({ timeout: 60_000 });
const tableMs = Date.now() - started;
const bytes = await fresh.evaluate(() => performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
  .filter((e) => !e.name.includes("/mcp") && !e.name.includes("/api/")).reduce((n, e) => n + e.transferSize, 0));
// Back to the table from another view: the list fetched through /mcp and drawn, in the page.
const renderMs = await fresh.evaluate(async () => {
  location.hash = "#/sandbox/none";
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  location.hash = "#/";
  await new Promise((r) => {
    const check = () => (document.querySelectorAll("table.sandboxes tbody tr").length >= 200 ? r() : requestAnimationFrame(check));
    check();
  });
  return performance.now() - t0;
});

// The render alone: from the list's arrival in the page to the frame that shows the
// table's first screenful ("warren:list-render" in app.mjs) and to the frame that shows all
// its rows ("warren:list-render-all"), over 10 returns to the table.
const [renders, rendersAll] = await fresh.evaluate(async () => {
  const seen = (name) => performance.getEntriesByName(name).map((e) => e.duration);
  const start = seen("warren:list-render-all").length;
  for (let i = 0; i < 10; i++) {
    location.hash = "#/sandbox/none";
    await new Promise((r) => setTimeout(r, 150));
    location.hash = "#/";
    const t0 = performance.now();
    while (seen("warren:list-render-all").length <= start + i && performance.now() - t0 < 10_000)
      await new Promise((r) => setTimeout(r, 20));
  }
  return [seen("warren:list-render").slice(-10), seen("warren:list-render-all").slice(-10)];
});

// Terminal echo, measured in the page: a key sent on the terminal's WebSocket until its
// echo comes back (the shell's line editor echoes it through the PTY).
const echo = await fresh.evaluate(async (id) => {
  const ws = new WebSocket(`ws://${location.host}/sandboxes/${id}/terminal?cols=80&rows=24`);
  ws.binaryType = "arraybuffer";
  let waiting = null;
  ws.onmessage = (e) => {
    if (typeof e.data === "string") return;
    ws.send(JSON.stringify({ type: "ack", bytes: e.data.byteLength }));
    if (waiting && new TextDecoder().decode(e.data).includes(waiting.key)) waiting.done();
  };
  await new Promise((r) => (ws.onopen = r));
  await new Promise((r) => setTimeout(r, 1500)); // the shell's prompt
  const times = [];
  for (let i = 0; i < 40; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const t0 = performance.now();
    await new Promise((done) => { waiting = { key, done }; ws.send(new TextEncoder().encode(key)); });
    times.push(performance.now() - t0);
  }
  ws.send(JSON.stringify({ type: "close" }));
  return times;
}, first.id);
const exec = [];
for (let i = 0; i < 40; i++) {
  const t0 = performance.now();
  await call("sandbox_exec", { id: first.id, argv: ["/bin/true"] });
  exec.push(performance.now() - t0);
}
// 50 MB through a terminal in the page, drawn by xterm as a user's browser would: warren's
// resident memory before, at its peak (VmHWM, reset first through clear_refs) and after.
const status = () => readFileSync(`/proc/${server.pid}/status`, "utf8");
const kib = (field) => Number(status().match(new RegExp(`${field}:\\s+(\\d+)`))[1]);
await fresh.goto(`${base}/#/sandbox/${first.id}/terminal`);
await fresh.locator(".xterm-helper-textarea").first().waitFor();
await fresh.waitForTimeout(1500);
writeFileSync(`/proc/${server.pid}/clear_refs`, "5");
const rssBefore = kib("VmRSS");
const floodStarted = Date.now();
await fresh.locator(".xterm-helper-textarea").first().focus();
await fresh.keyboard.type("yes | head -c 50000000; echo flood-$((6*7))\n");
await fresh.waitForFunction(() => document.querySelector(".xterm-rows")?.innerText.includes("flood-42"), null, { timeout: 600_000, polling: 500 });
const floodMs = Date.now() - floodStarted;
const rssPeak = kib("VmHWM");
const rssAfter = kib("VmRSS");

console.log(`first load of / (signed in): ${(bytes / 1024).toFixed(1)} KiB transferred (target < 300 KB)`);
console.log(`sandbox table with ${N} sandboxes: ${tableMs} ms from navigation to the last row (list fetched and drawn); back to the table from another view (list fetched and drawn) ${renderMs.toFixed(0)} ms (target < 100 ms)`);
const max = (v) => Math.max(...v);
console.log(`sandbox table with ${N} sandboxes, render alone (list in the page -> painted, ${renders.length} renders): first screenful p50 ${p50(renders.slice()).toFixed(1)} ms (max ${max(renders).toFixed(1)}), all ${N} rows p50 ${p50(rendersAll.slice()).toFixed(1)} ms (max ${max(rendersAll).toFixed(1)}) (target < 100 ms); load average ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]} on ${require("node:os").cpus().length} CPUs`);
console.log(`yes | head -c 50000000 through a terminal drawn in the page: ${(floodMs / 1000).toFixed(1)} s; warren's RSS ${(rssBefore / 1024).toFixed(1)} MiB before, peak ${(rssPeak / 1024).toFixed(1)} MiB (+${((rssPeak - rssBefore) / 1024).toFixed(1)}), ${(rssAfter / 1024).toFixed(1)} MiB after`);
console.log(`terminal keystroke echo (WebSocket round trip in the page) p50 ${p50(echo).toFixed(1)} ms; sandbox_exec /bin/true p50 ${p50(exec).toFixed(1)} ms: ${(p50(echo) / p50(exec)).toFixed(2)}x (target <= 2x)`);
await browser.close();
for (let i = 0; i < N; i++) await call("sandbox_destroy", { id: `bench-${i}` });
await mcp.close();
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
rmSync(state, { recursive: true, force: true });
