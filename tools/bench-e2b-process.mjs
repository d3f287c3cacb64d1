#!/usr/bin/env node
// Figures for envd's process service (a benchmark, not a test): the round trip of the e2b
// SDK's commands.run('true') against MCP sandbox_exec of /bin/true on the same server and
// the same sandbox, in one run, interleaved so that both see the same machine load; p50,
// p90 and their ratio (the target: the SDK within 1.5x of sandbox_exec), and sandbox_exec
// of the login shell commands.run really runs (bash -l -c). Then the
// throughput of one command's output streamed to the SDK. Needs root and a build; run
// from the repository: node tools/bench-e2b-process.mjs [build dir] [rounds]
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const build = resolve(process.argv[2] ?? "build");
const rounds = Number(process.argv[3] ?? 200);
const require = createRequire(resolve("tests/integration/package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const state = mkdtempSync(join(tmpdir(), "warren-bench-e2b-"));
const token = "e2b_" + randomBytes(20).toString("hex");
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
process.env.E2B_API_URL = base;
process.env.E2B_SANDBOX_URL = base;
process.env.E2B_API_KEY = token;
const { Sandbox } = await import(require.resolve("e2b"));

const mcp = new Client({ name: "bench-e2b", version: "1" });
await mcp.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
const sbx = await Sandbox.create({ timeoutMs: 3_600_000 });
const exec = async () => {
  const r = await mcp.callTool({ name: "sandbox_exec", arguments: { id: sbx.sandboxId, argv: ["/bin/true"] } });
  if (r.isError || r.structuredContent.exit_code !== 0) throw new Error(JSON.stringify(r));
};
const execLogin = async () => {
  const r = await mcp.callTool({ name: "sandbox_exec", arguments: { id: sbx.sandboxId, argv: ["/bin/bash", "-l", "-c", "true"] } });
  if (r.isError || r.structuredContent.exit_code !== 0) throw new Error(JSON.stringify(r));
};
const run = async () => {
  const r = await sbx.commands.run("true");
  if (r.exitCode !== 0) throw new Error(JSON.stringify(r));
};
const pct = (v, p) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(v.length * p))];
const time = async (fn) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

for (let i = 0; i < 10; i++) await exec(), await run(); // warm up both paths
const sdk = [];
const tool = [];
const login = [];
for (let i = 0; i < rounds; i++) {
  // Alternate which goes first, so neither always follows the other.
  if (i % 2) sdk.push(await time(run)), tool.push(await time(exec));
  else tool.push(await time(exec)), sdk.push(await time(run));
  login.push(await time(execLogin));
}
const fmt = (v) => `p50 ${pct(v, 0.5).toFixed(2)} ms, p90 ${pct(v, 0.9).toFixed(2)} ms`;
console.log(`commands.run('true') through the e2b SDK (${rounds} runs): ${fmt(sdk)}`);
console.log(`MCP sandbox_exec of /bin/true          (${rounds} runs): ${fmt(tool)}`);
const ratio = pct(sdk, 0.5) / pct(tool, 0.5);
console.log(`ratio of the p50s (SDK / sandbox_exec): ${ratio.toFixed(2)}x (target <= 1.5x)`);
// What commands.run really runs is a login shell: the same through sandbox_exec tells the
// service's own cost from the shell's.
console.log(`MCP sandbox_exec of /bin/bash -l -c true (${rounds} runs): ${fmt(login)}`);
console.log(`ratio of the p50s (SDK / sandbox_exec of the same login shell): ${(pct(sdk, 0.5) / pct(login, 0.5)).toFixed(2)}x`);

// Output throughput: 64 MiB from one command, decoded by the SDK.
const mib = 64;
let got = 0;
const ms = await time(() => sbx.commands.run(`head -c ${mib * 1048576} /dev/zero`, {
  onStdout: (d) => { got += d.length; },
  timeoutMs: 600_000,
}));
console.log(`stdout streamed to the SDK: ${mib} MiB in ${ms.toFixed(0)} ms = ${(got / 1048576 / (ms / 1000)).toFixed(1)} MiB/s`);

await sbx.kill();
await mcp.close();
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
rmSync(state, { recursive: true, force: true });
