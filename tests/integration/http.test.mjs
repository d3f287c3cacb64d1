// warren serve: the Streamable HTTP transport with the SDK client (tools, progress over
// SSE, parallel clients with their own sandboxes) and with raw fetch (auth, Origin,
// sessions, protocol version header, notifications, malformed bodies, GET streams,
// DELETE), plus the refusal to serve a non-loopback address without auth.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";

import {
  callTool,
  callToolError,
  connectHttp,
  makeGitRepo,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  warrenBinary,
} from "./lib/harness.mjs";

skipUnlessRoot();

const token = randomBytes(24).toString("hex");
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
let server;

const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw-fetch", version: "1" } },
};

function headers(extra = {}) {
  return {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    Authorization: `Bearer ${token}`,
    ...extra,
  };
}

// POSTs body (object or raw string) to the server; returns {status, headers, text, json}
// where json is the JSON-RPC message in the body (parsed from SSE data when needed).
async function post(body, extraHeaders = {}, { omit = [] } = {}) {
  const h = headers(extraHeaders);
  for (const k of omit) delete h[k];
  const res = await fetch(server.url, {
    method: "POST",
    headers: h,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  const type = res.headers.get("content-type") ?? "";
  try {
    if (type.includes("text/event-stream")) {
      const datas = text
        .split(/\r?\n\r?\n/)
        .map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n"))
        .filter(Boolean)
        .map((d) => JSON.parse(d));
      json = datas.find((m) => "result" in m || "error" in m) ?? datas.at(-1) ?? null;
    } else if (text) json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// A raw session: initialize + notifications/initialized; returns the session id.
async function rawSession() {
  const r = await post(INIT);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json?.result?.protocolVersion, "2025-11-25", r.text);
  const sid = r.headers.get("mcp-session-id");
  assert.ok(sid && /^[\x21-\x7e]+$/.test(sid), `bad Mcp-Session-Id ${sid}`);
  const n = await post(
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25" },
  );
  assert.equal(n.status, 202, n.text);
  return sid;
}

test("server starts with a token", async () => {
  server = await startHttpServer({ stateDir, token });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
});

test("SDK client: initialize, tools, create with repo, exec with progress over SSE, files, list, destroy", async () => {
  const repo = makeGitRepo({ "README.md": "http repo\n", "src/main.c": "int main(void){return 0;}\n" });
  const client = await connectHttp(server.url, token);
  assert.equal(client.getServerVersion().name, "warren");
  assert.ok(client.transport.sessionId, "no session id");
  const { tools } = await client.listTools();
  assert.equal(tools.length, 28);

  const sb = await callTool(client, "sandbox_create", { name: "http-main", repo });
  assert.equal(sb.state, "running");
  let r = await callTool(client, "sandbox_exec", { id: sb.id, command: "cat README.md src/main.c" });
  assert.equal(r.stdout, "http repo\nint main(void){return 0;}\n");

  const progress = [];
  r = await callTool(
    client,
    "sandbox_exec",
    { id: sb.id, command: "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done" },
    { onprogress: (p) => progress.push(p), timeout: 60_000 },
  );
  assert.equal(r.exit_code, 0);
  assert.match(r.stdout, /tick 6\n$/);
  assert.ok(progress.length >= 2, `only ${progress.length} progress notifications over HTTP`);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress);
  assert.ok(progress.some((p) => /tick/.test(p.message ?? "")), JSON.stringify(progress));

  const bytes = randomBytes(100_000);
  await callTool(client, "sandbox_write_file", {
    id: sb.id,
    path: "out/data.bin",
    content: bytes.toString("base64"),
    encoding: "base64",
    create_dirs: true,
  });
  const back = await callTool(client, "sandbox_read_file", { id: sb.id, path: "out/data.bin", encoding: "base64" });
  assert.deepEqual(Buffer.from(back.content, "base64"), bytes);
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "t.txt", content: "text over http\n" });
  assert.equal((await callTool(client, "sandbox_read_file", { id: sb.id, path: "t.txt" })).content, "text over http\n");

  const { sandboxes } = await callTool(client, "sandbox_list");
  assert.ok(sandboxes.some((s) => s.id === sb.id && s.state === "running"));

  // Cancellation over HTTP (notifications/cancelled in a separate POST) kills the command.
  const controller = new AbortController();
  const cancelled = callTool(client, "sandbox_exec", { id: sb.id, command: "sleep 60; touch /tmp/not-cancelled" }, { signal: controller.signal });
  setTimeout(() => controller.abort(), 1000);
  await assert.rejects(cancelled);
  await new Promise((res) => setTimeout(res, 1500));
  r = await callTool(client, "sandbox_exec", { id: sb.id, argv: ["ps", "-eo", "args"] });
  assert.doesNotMatch(r.stdout, /sleep 60/, r.stdout);
  r = await callTool(client, "sandbox_exec", { id: sb.id, command: "test -e /tmp/not-cancelled && echo exists || echo absent" });
  assert.equal(r.stdout, "absent\n");

  assert.match(await callToolError(client, "sandbox_exec", { id: sb.id }), /command|argv/);
  await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.match(await callToolError(client, "sandbox_exec", { id: sb.id, command: "true" }), new RegExp(sb.id));
  await client.close();
});

test("three clients in parallel, each with its own sandbox", async () => {
  const run = async (i) => {
    const repo = makeGitRepo({ "who.txt": `repo number ${i}\n` });
    const client = await connectHttp(server.url, token);
    const sb = await callTool(client, "sandbox_create", { name: `http-par-${i}`, repo, env: { WHO: `env-${i}` } });
    const results = [];
    for (let round = 0; round < 5; round++) {
      await callTool(client, "sandbox_write_file", { id: sb.id, path: `round-${round}.txt`, content: `client ${i} round ${round}\n` });
      const r = await callTool(client, "sandbox_exec", {
        id: sb.id,
        command: `cat who.txt round-${round}.txt; echo $WHO; hostname; sleep 0.$(( $$ % 3 ))`,
      });
      results.push(r.stdout);
    }
    const list = await callTool(client, "sandbox_exec", { id: sb.id, command: "ls /workspace | sort | tr '\\n' ' '" });
    return { i, sb, client, results, list: list.stdout };
  };
  const all = await Promise.all([0, 1, 2].map(run));
  for (const { i, sb, results, list } of all) {
    assert.equal(sb.name, `http-par-${i}`);
    results.forEach((out, round) =>
      assert.equal(out, `repo number ${i}\nclient ${i} round ${round}\nenv-${i}\nhttp-par-${i}\n`),
    );
    assert.equal(list, "round-0.txt round-1.txt round-2.txt round-3.txt round-4.txt who.txt ");
  }
  assert.equal(new Set(all.map((a) => a.sb.id)).size, 3);
  // Every client sees all three sandboxes.
  const { sandboxes } = await callTool(all[0].client, "sandbox_list");
  for (const { sb } of all) assert.ok(sandboxes.some((s) => s.id === sb.id));
  await Promise.all(all.map(({ client, sb }) => callTool(client, "sandbox_destroy", { id: sb.id })));
  await Promise.all(all.map(({ client }) => client.close()));
});

test("raw HTTP: auth, Origin, sessions, protocol version, notifications, bad bodies", async () => {
  // Authentication.
  let r = await post(INIT, {}, { omit: ["Authorization"] });
  assert.equal(r.status, 401, r.text);
  r = await post(INIT, { Authorization: "Bearer wrong-token" });
  assert.equal(r.status, 401, r.text);
  r = await post(INIT, { Authorization: `Basic ${Buffer.from("u:" + token).toString("base64")}` });
  assert.equal(r.status, 401, r.text);

  // Origin: a foreign one is refused even with the right token; our own is fine.
  r = await post(INIT, { Origin: "http://evil.example" });
  assert.equal(r.status, 403, r.text);
  const own = new URL(server.url).origin;
  r = await post(INIT, { Origin: own });
  assert.equal(r.status, 200, r.text);

  const sid = await rawSession();
  const sh = { "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25" };

  // A request works on the session.
  r = await post({ jsonrpc: "2.0", id: 2, method: "ping" }, sh);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json?.result, {}, r.text);
  r = await post({ jsonrpc: "2.0", id: 3, method: "tools/list" }, sh);
  assert.equal(r.json?.result?.tools?.length, 28, r.text);

  // Missing session id on a non-initialize request: 400. Unknown: 404.
  r = await post({ jsonrpc: "2.0", id: 4, method: "ping" }, { "MCP-Protocol-Version": "2025-11-25" });
  assert.equal(r.status, 400, r.text);
  r = await post({ jsonrpc: "2.0", id: 5, method: "ping" }, { ...sh, "Mcp-Session-Id": "no-such-session-0123456789" });
  assert.equal(r.status, 404, r.text);

  // Protocol version header: unsupported 400; another supported one accepted; absent accepted.
  r = await post({ jsonrpc: "2.0", id: 6, method: "ping" }, { ...sh, "MCP-Protocol-Version": "1999-01-01" });
  assert.equal(r.status, 400, r.text);
  r = await post({ jsonrpc: "2.0", id: 7, method: "ping" }, { ...sh, "MCP-Protocol-Version": "2025-06-18" });
  assert.equal(r.status, 200, r.text);
  r = await post({ jsonrpc: "2.0", id: 8, method: "ping" }, { "Mcp-Session-Id": sid });
  assert.equal(r.status, 200, r.text);

  // A notification: 202, no body.
  r = await post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 999 } }, sh);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.text, "");

  // Malformed JSON: 400 (with a JSON-RPC parse error when there is a body).
  r = await post("{this is not json", sh);
  assert.equal(r.status, 400, r.text);
  if (r.json) assert.equal(r.json.error?.code, -32700, r.text);

  // Unknown tool over HTTP: a JSON-RPC error, not a transport error.
  r = await post({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "nope", arguments: {} } }, sh);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json?.error?.code, -32602, r.text);

  // The session still works after all that.
  r = await post({ jsonrpc: "2.0", id: 10, method: "ping" }, sh);
  assert.equal(r.status, 200, r.text);

  // GET opens a standalone event stream.
  const controller = new AbortController();
  const g = await fetch(server.url, {
    method: "GET",
    headers: { Accept: "text/event-stream", Authorization: `Bearer ${token}`, ...sh },
    signal: controller.signal,
  });
  assert.equal(g.status, 200);
  assert.match(g.headers.get("content-type") ?? "", /^text\/event-stream/);
  controller.abort();
  await g.body?.cancel().catch(() => {});
  // GET without auth is refused too.
  const g2 = await fetch(server.url, { method: "GET", headers: { Accept: "text/event-stream", ...sh } });
  assert.equal(g2.status, 401);
  await g2.body?.cancel().catch(() => {});

  // DELETE ends the session; afterwards its id is unknown.
  const d = await fetch(server.url, { method: "DELETE", headers: { Authorization: `Bearer ${token}`, ...sh } });
  assert.ok(d.status >= 200 && d.status < 300, `DELETE gave ${d.status}`);
  await d.body?.cancel().catch(() => {});
  r = await post({ jsonrpc: "2.0", id: 11, method: "ping" }, sh);
  assert.equal(r.status, 404, r.text);

  // The server still serves new sessions.
  const sid2 = await rawSession();
  r = await post({ jsonrpc: "2.0", id: 12, method: "ping" }, { "Mcp-Session-Id": sid2, "MCP-Protocol-Version": "2025-11-25" });
  assert.equal(r.status, 200, r.text);
});

test("SDK terminateSession ends the session", async () => {
  const client = await connectHttp(server.url, token);
  await client.ping();
  const sid = client.transport.sessionId;
  assert.ok(sid);
  await client.transport.terminateSession();
  assert.equal(client.transport.sessionId, undefined);
  const r = await post({ jsonrpc: "2.0", id: 1, method: "ping" }, { "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25" });
  assert.equal(r.status, 404, r.text);
  await client.close();
  // The server is fine.
  const other = await connectHttp(server.url, token);
  await other.ping();
  await other.close();
});

test("serve on 0.0.0.0 with --auth none is refused", async () => {
  const env = { ...process.env };
  delete env.WARREN_TOKEN;
  const child = spawn(
    warrenBinary(),
    ["serve", "--listen", "0.0.0.0:0", "--auth", "none", "--backend", "jail", "--state-dir", tempStateDir()],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [code, signal] = await new Promise((r) => child.on("exit", (c, s) => r([c, s])));
  clearTimeout(timer);
  assert.equal(signal, null, `warren serve did not exit by itself (it served 0.0.0.0 without auth): ${output}`);
  assert.notEqual(code, 0, output);
  assert.doesNotMatch(output, /listening on/);
  assert.match(output, /loopback|auth/i, output);
});
