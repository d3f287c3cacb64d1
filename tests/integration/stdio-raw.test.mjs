// Bad input straight on the stdio wire (what the SDK client cannot send): malformed JSON,
// a batch, a message over the size cap, a wrong jsonrpc version, an unknown method.
// Each gets the right JSON-RPC error and the server keeps serving on the same pipe.
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const build = process.env.WARREN_BUILD_DIR ?? new URL("../../build", import.meta.url).pathname;
if (process.getuid() !== 0) {
  // The server refuses to start without a usable backend; nothing to test then.
  console.log("skipped: needs root for the jail backend");
  process.exit(77);
}
const stateDir = mkdtempSync(join(tmpdir(), "warren-raw-"));
const server = spawn(join(build, "warren"), ["mcp", "--state-dir", stateDir, "--log-level", "error"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const lines = createInterface({ input: server.stdout });
const waiting = [];
const received = [];
lines.on("line", (line) => {
  const msg = JSON.parse(line); // every line on stdout must be valid JSON
  if (waiting.length) waiting.shift()(msg);
  else received.push(msg);
});
const next = () =>
  new Promise((resolve, reject) => {
    if (received.length) return resolve(received.shift());
    const timer = setTimeout(() => reject(new Error("no answer within 10 s")), 10_000);
    waiting.push((m) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
const send = (text) => server.stdin.write(text + "\n");

try {
  send('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}');
  assert.equal((await next()).result.protocolVersion, "2025-11-25");
  send('{"jsonrpc":"2.0","method":"notifications/initialized"}');

  send("{this is not json");
  let m = await next();
  assert.equal(m.error.code, -32700);
  assert.equal(m.id, null);

  send('[{"jsonrpc":"2.0","id":2,"method":"ping"}]');
  assert.equal((await next()).error.code, -32600);

  send('{"jsonrpc":"1.0","id":3,"method":"ping"}');
  m = await next();
  assert.equal(m.error.code, -32600);
  assert.equal(m.id, 3);

  send('{"jsonrpc":"2.0","id":4,"method":"no/such/method"}');
  assert.equal((await next()).error.code, -32601);

  send('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}');
  assert.equal((await next()).error.code, -32602);

  // 50 MiB in one line: over the 48 MiB cap.
  const huge = '{"jsonrpc":"2.0","id":6,"method":"ping","params":{"pad":"' + "x".repeat(50 * 1024 * 1024) + '"}}';
  send(huge);
  m = await next();
  assert.equal(m.error.code, -32600);
  assert.match(m.error.message, /too large/);

  // Still serving, on the same pipe.
  send('{"jsonrpc":"2.0","id":7,"method":"ping"}');
  m = await next();
  assert.equal(m.id, 7);
  assert.deepEqual(m.result, {});

  // A tool result error (wrong argument type) is not a protocol error.
  send('{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"sandbox_exec","arguments":{"id":42}}}');
  m = await next();
  assert.equal(m.result.isError, true);
  assert.match(m.result.content[0].text, /'id' must be a string/);
  console.log("ok - stdio raw protocol errors");
} finally {
  server.stdin.end();
  await new Promise((r) => server.on("exit", r));
  rmSync(stateDir, { recursive: true, force: true });
}
