// Graceful shutdown on SIGTERM. Over HTTP: the session's event stream ends, new requests
// get 503, a call in flight finishes with its real answer, or past --shutdown-timeout gets
// a JSON-RPC error (its process killed), the server exits within the bound, and the sandbox
// keeps running for the next server on the same state directory. Over stdio: new requests
// get a JSON-RPC error while the call in flight finishes.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

import {
  callTool,
  connectHttp,
  connectStdio,
  processRuns,
  skipUnlessRoot,
  spawnRawStdio,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const token = "shutdown-test-token-0123456789";

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once("exit", (code) => r(code)));
}

function mcpPost(url, sessionId, body) {
  return fetch(url, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "Mcp-Session-Id": sessionId,
      "MCP-Protocol-Version": "2025-11-25",
    },
    body: JSON.stringify(body),
  });
}

test("SIGTERM during a long exec: stream ends, 503 for new requests, the call is cancelled within the bound, the sandbox survives", async () => {
  const stateDir = tempStateDir();
  sweepSandboxesAtEnd(stateDir);
  const server = await startHttpServer({ stateDir, token, args: ["--shutdown-timeout", "3"] });
  const client = await connectHttp(server.url, token);
  const sb = await callTool(client, "sandbox_create", { name: "drain-long" });
  const sessionId = client.transport.sessionId;
  assert.ok(sessionId);

  // A second session, made by hand, with its standalone GET event stream (the SDK client
  // holds its own session's).
  const init = await fetch(server.url, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "0" } } }),
  });
  assert.equal(init.status, 200);
  await init.text();
  const rawSession = init.headers.get("mcp-session-id");
  assert.equal((await mcpPost(server.url, rawSession, { jsonrpc: "2.0", method: "notifications/initialized" })).status, 202);
  const stream = await fetch(server.url, {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream", "Mcp-Session-Id": rawSession },
  });
  assert.equal(stream.status, 200);
  const streamEnded = (async () => {
    const reader = stream.body.getReader();
    for (;;) if ((await reader.read()).done) return Date.now();
  })();

  const call = client.callTool({ name: "sandbox_exec", arguments: { id: sb.id, command: "sleep 20; echo never" } },
    undefined, { timeout: 60_000 });
  const answer = call.then((r) => ({ result: r }), (error) => ({ error }));
  await sleep(1000);
  const t0 = Date.now();
  server.process.kill("SIGTERM");
  await sleep(300);

  // Draining: a new request is refused with 503 and a JSON-RPC-shaped body.
  const refused = await mcpPost(server.url, sessionId, { jsonrpc: "2.0", id: 99, method: "tools/list" });
  assert.equal(refused.status, 503);
  assert.match((await refused.json()).error.message, /shutting down/);
  const metrics = await fetch(server.url.replace(/\/mcp$/, "/metrics"), { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(metrics.status, 503);

  const ended = await Promise.race([streamEnded, sleep(2500).then(() => null)]);
  assert.ok(ended, "the GET event stream did not end at the start of the drain");
  assert.ok(ended - t0 < 2500, `the stream ended ${ended - t0} ms after SIGTERM`);

  const { result, error } = await answer;
  const tAnswer = Date.now() - t0;
  assert.equal(result, undefined, `the exec answered ${JSON.stringify(result)}`);
  assert.equal(error.code, -32000, String(error));
  assert.match(error.message, /shutting down/);
  assert.ok(tAnswer >= 2500 && tAnswer < 6000, `cancelled ${tAnswer} ms after SIGTERM (bound 3 s)`);

  const code = await Promise.race([exited(server.process), sleep(5000).then(() => "still running")]);
  assert.equal(code, 0, server.stderrTail());
  assert.ok(Date.now() - t0 < 6000, `exited ${Date.now() - t0} ms after SIGTERM`);
  assert.match(server.stderrTail(), /cancelled 1 call\(s\) still in flight/);
  assert.ok(processRuns(sb.pid), "the sandbox's PID 1 died with the server");

  // The next server finds the sandbox running; the cancelled sleep is gone from it.
  const next = await connectStdio({ stateDir });
  const listed = (await callTool(next, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
  assert.equal(listed.state, "running");
  const r = await callTool(next, "sandbox_exec", { id: sb.id, command: "echo alive; pgrep -x sleep | wc -l" });
  assert.equal(r.stdout, "alive\n0\n");
  await callTool(next, "sandbox_destroy", { id: sb.id });
}, { timeoutMs: 90_000 });

test("SIGTERM during a short exec: the call finishes with its answer, then the server exits", async () => {
  const stateDir = tempStateDir();
  sweepSandboxesAtEnd(stateDir);
  const server = await startHttpServer({ stateDir, token });
  const client = await connectHttp(server.url, token);
  const sb = await callTool(client, "sandbox_create", { name: "drain-short" });
  const call = callTool(client, "sandbox_exec", { id: sb.id, command: "sleep 2; echo finished" });
  await sleep(500);
  const t0 = Date.now();
  server.process.kill("SIGTERM");
  const r = await call;
  assert.equal(r.stdout, "finished\n");
  assert.equal(r.exit_code, 0);
  const code = await Promise.race([exited(server.process), sleep(4000).then(() => "still running")]);
  assert.equal(code, 0, server.stderrTail());
  // Well inside the default 10 s bound: the drain ends when the last call does.
  assert.ok(Date.now() - t0 < 4000, `exited ${Date.now() - t0} ms after SIGTERM`);
  assert.ok(processRuns(sb.pid));
}, { timeoutMs: 90_000 });

test("stdio: after SIGTERM new requests get a JSON-RPC error, the call in flight still answers", async () => {
  const stateDir = tempStateDir();
  sweepSandboxesAtEnd(stateDir);
  const raw = spawnRawStdio({ stateDir });
  const init = await raw.request("initialize", {
    protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "shutdown-test", version: "0" } });
  assert.ok(init.result);
  raw.send({ jsonrpc: "2.0", method: "notifications/initialized" });
  const created = await raw.request("tools/call", { name: "sandbox_create", arguments: { name: "drain-stdio" } });
  const sb = created.result.structuredContent;
  raw.send({ jsonrpc: "2.0", id: "long", method: "tools/call",
    params: { name: "sandbox_exec", arguments: { id: sb.id, command: "sleep 1.5; echo done" } } });
  await sleep(400);
  raw.process.kill("SIGTERM");
  await sleep(200);
  raw.send({ jsonrpc: "2.0", id: "late", method: "tools/list" });
  const seen = {};
  while (!seen.long || !seen.late) {
    const m = await raw.next(10_000);
    if (m.id === "long" || m.id === "late") seen[m.id] = m;
  }
  assert.equal(seen.late.error.code, -32000);
  assert.match(seen.late.error.message, /shutting down/);
  assert.equal(seen.long.result.structuredContent.stdout, "done\n");
  assert.equal(await Promise.race([exited(raw.process), sleep(4000).then(() => "still running")]), 0);
  assert.ok(processRuns(sb.pid));
}, { timeoutMs: 60_000 });
