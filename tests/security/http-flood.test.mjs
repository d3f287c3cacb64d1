// The server under a connection flood: 5,000 connections that each send half a request
// and stall fill warren serve's 1,024-connection cap many times over. A real MCP client
// (the official SDK, with the token) must still get through meanwhile: at the cap the
// server drops the oldest connection that has not delivered a whole request. Then a
// memory flood: requests whose bodies keep arriving (never whole) may hold at most
// HTTP_MAX_INCOMPLETE_BYTES (512 MiB: two uploads at E2B's 256 MiB cap) together; past it
// the largest is answered 503.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
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

const rssMiB = () => Number(readFileSync(`/proc/${server.process.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

test("requests that never finish arriving hold at most 512 MiB together; a client still gets through", async () => {
  // Each under /mcp's 48 MiB body cap; a declared length is held from the headers on.
  const CONNS = 16, SEND = 36 << 20, DECLARED = 40 << 20;
  const before = rssMiB();
  const chunk = Buffer.alloc(1 << 20, "x");
  const answers = await Promise.all(Array.from({ length: CONNS }, () => new Promise((resolve) => {
    let text = "";
    const s = connect({ host: hostname, port: Number(port) }, async () => {
      s.write(`POST /mcp HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${DECLARED}\r\n\r\n`);
      for (let sent = 0; sent < SEND && !s.destroyed; sent += chunk.length)
        if (!s.write(chunk))
          await new Promise((r) => {
            const done = () => { s.off("drain", done); s.off("close", done); r(); };
            s.on("drain", done).on("close", done);
          });
      // Stalled short of the declared length: the request never completes.
      setTimeout(() => { s.destroy(); resolve(text); }, 3000);
    });
    s.on("data", (d) => { text += d; });
    s.on("error", () => {});
  })));
  const refused = answers.filter((a) => a.startsWith("HTTP/1.1 503")).length;
  const peak = rssMiB();
  console.log(`${refused} of ${CONNS} stalled ${SEND >> 20} MiB uploads refused; server RSS ${before.toFixed(0)} -> ${peak.toFixed(0)} MiB`);
  // 16 x 40 MiB held is 640 MiB: at least 3 are refused to stay under 512 MiB.
  assert.ok(refused >= 3, `only ${refused} refused`);
  assert.ok(peak - before < 512 + 128, `the server grew by ${peak - before} MiB`);
  const client = await connectHttp(server.url, token);
  assert.deepEqual((await callTool(client, "sandbox_list")).sandboxes, []);
  await client.close();
}, { timeoutMs: 120_000 });
