#!/usr/bin/env node
// Runs several sandboxes in parallel through one warren HTTP server: each worker gets
// its own MCP session and sandbox over the same repository, runs a command, and reports.
//
//   WARREN_URL=http://127.0.0.1:8080/mcp WARREN_TOKEN=$(cat /var/lib/warren/token) \
//     node examples/orchestrator.mjs /path/to/repo 4 "ls -la && git --version"
//
// Uses the official MCP SDK: run `npm install` in examples/ once.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.env.WARREN_URL ?? "http://127.0.0.1:8080/mcp";
const token = process.env.WARREN_TOKEN ?? "";
const [repo, workers = "3", command = "uname -a; ls /workspace | head"] = process.argv.slice(2);
if (!repo) {
  console.error("usage: orchestrator.mjs REPO [WORKERS] [COMMAND]");
  process.exit(2);
}

async function worker(n) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: `orchestrator-${n}`, version: "1.0.0" });
  await client.connect(transport);
  const call = async (name, args) => {
    const r = await client.callTool({ name, arguments: args }, undefined, {
      timeout: 600_000,
      resetTimeoutOnProgress: true,
      onprogress: (p) => p.message && console.error(`[worker ${n}] ${p.message}`),
    });
    if (r.isError) throw new Error(`${name}: ${r.content?.[0]?.text}`);
    return r.structuredContent;
  };
  const sb = await call("sandbox_create", { name: `orchestrated-${process.pid}-${n}`, repo });
  try {
    const out = await call("sandbox_exec", { id: sb.id, command });
    return { worker: n, sandbox: sb.name, exit_code: out.exit_code, stdout: out.stdout.trim() };
  } finally {
    await call("sandbox_destroy", { id: sb.id });
    await transport.terminateSession();
    await client.close();
  }
}

const results = await Promise.all(Array.from({ length: Number(workers) }, (_, i) => worker(i)));
for (const r of results) console.log(JSON.stringify(r));
