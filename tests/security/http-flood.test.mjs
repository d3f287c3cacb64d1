// The server under a connection flood: 5,000 connections that each send half a request
// and stall fill warren serve's 1,024-connection cap many times over. A real MCP client
// (the official SDK, with the token) must still get through meanwhile: at the cap the
// server drops the oldest connection that has not delivered a whole request.
import assert from "node:assert/strict";
import { connect } from "node:net";

import { callTool, connectHttp, startHttpServer, tempStateDir, test } from "../integration/lib/harness.mjs";

const FLOOD = 5000;
const token = "flood-test-token";
const server = await startHttpServer({ stateDir: tempStateDir(), token });
const { hostname, port } = new URL(server.url);

const held = [];
let reset = 0;
async function flood(n) {
  const opened = [];
  for (let i = 0; i < n; i++) {
    opened.push(
      new Promise((resolve) => {
        const s = connect({ host: hostname, port: Number(port) }, () => {
          // Half a request: a request line and one header, never the blank line.
          s.write(`POST /mcp HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`);
          resolve();
        });
        s.on("error", () => {
          reset++;
          resolve();
        });
        s.on("close", () => reset++);
        held.push(s);
      }),
    );
    if (i % 200 === 199) await Promise.all(opened.splice(0));
  }
  await Promise.all(opened);
}

test("a real client gets through while 5,000 half-open connections hammer the cap", async () => {
  await flood(FLOOD);
  const started = Date.now();
  const client = await connectHttp(server.url, token);
  const list = await callTool(client, "sandbox_list");
  assert.deepEqual(list.sandboxes, []);
  const elapsed = Date.now() - started;
  console.log(`client served in ${elapsed} ms with ${FLOOD} half-open connections opened; ${reset} of them were dropped`);
  assert.ok(elapsed < 10_000, `the client waited ${elapsed} ms`);
  // The server shed the stalled connections instead of refusing the client.
  assert.ok(reset >= FLOOD - 1024, `only ${reset} half-open connections were dropped`);
  await client.close();
  for (const s of held) s.destroy();
}, { timeoutMs: 120_000 });
