// envd's file API through the real e2b SDK (pinned in package.json) against `warren serve`
// on the jail backend: filesystem.Filesystem (Stat, ListDir, MakeDir, Move, Remove,
// WatchDir, the polling watcher) and /files (download, multipart and octet-stream upload,
// signed URLs), the same files seen through MCP, and the refusals: a path outside the
// sandbox, an unknown user, an oversized upload, a malformed multipart body, a bad
// signature, after which the server still serves.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";

import { FileNotFoundError, InvalidArgumentError, Sandbox } from "e2b";

import {
  callTool,
  connectHttp,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const token = `e2b_${randomBytes(16).toString("hex")}`;
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const server = await startHttpServer({ stateDir, token });
const base = server.url.replace(/\/mcp$/, "");
const mcp = await connectHttp(server.url, token);
const opts = { apiUrl: base, sandboxUrl: base, apiKey: token, requestTimeoutMs: 60_000 };
const sbx = await Sandbox.create("base", opts);
await sbx.files.write("/tmp/alive.txt", "alive");

// envd's headers for raw requests (what the SDK sends).
const envdHeaders = (extra = {}) => ({
  "E2b-Sandbox-Id": sbx.sandboxId,
  "X-Access-Token": sbx.envdAccessToken,
  ...extra,
});
const mcpRead = async (path) =>
  (await callTool(mcp, "sandbox_read_file", { id: sbx.sandboxId, path })).content;
const serverServes = async () => assert.equal(await sbx.files.read("/tmp/alive.txt"), "alive");

test("write and read: text, binary, several files at once; MCP sees the same files", async () => {
  const info = await sbx.files.write("/tmp/t/hello.txt", "hello, sandbox\n");
  assert.deepEqual({ name: info.name, type: info.type, path: info.path },
    { name: "hello.txt", type: "file", path: "/tmp/t/hello.txt" });
  assert.equal(await sbx.files.read("/tmp/t/hello.txt"), "hello, sandbox\n");
  const bin = new Uint8Array(randomBytes(70_000));
  bin[0] = 0; bin[1] = 255; bin[2] = 13; bin[3] = 10;
  await sbx.files.write("/tmp/t/blob.bin", bin.buffer);
  assert.deepEqual(await sbx.files.read("/tmp/t/blob.bin", { format: "bytes" }), bin);
  const many = await sbx.files.write([
    { path: "/tmp/t/many/a.txt", data: "first" },
    { path: "/tmp/t/many/b \"q\".txt", data: "second" },
    { path: "/tmp/t/many/c.bin", data: new Blob([new Uint8Array([1, 2, 3])]) },
  ]);
  assert.deepEqual(many.map((f) => f.path),
    ["/tmp/t/many/a.txt", "/tmp/t/many/b \"q\".txt", "/tmp/t/many/c.bin"]);
  assert.equal(await sbx.files.read("/tmp/t/many/b \"q\".txt"), "second");
  assert.equal(await mcpRead("/tmp/t/many/a.txt"), "first");
  assert.equal(await mcpRead("/tmp/t/hello.txt"), "hello, sandbox\n");
  // A stream goes up as application/octet-stream (envd >= 0.5.7).
  const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("streamed")); c.close(); } });
  await sbx.files.write("/tmp/t/streamed.txt", stream);
  assert.equal(await mcpRead("/tmp/t/streamed.txt"), "streamed");
  // Empty files come back empty.
  await sbx.files.write("/tmp/t/empty", "");
  assert.equal(await sbx.files.read("/tmp/t/empty"), "");
  // A relative path is below the user's home (root's: /root).
  const rel = await sbx.files.write("notes/rel.txt", "relative");
  assert.equal(rel.path, "/root/notes/rel.txt");
  assert.equal(await mcpRead("/root/notes/rel.txt"), "relative");
});

test("a large file streams back in pieces, byte for byte", async () => {
  const big = new Uint8Array(randomBytes(17 * 1024 * 1024 + 123)); // past one 16 MiB read
  await sbx.files.write("/tmp/t/big.bin", big);
  const back = await sbx.files.read("/tmp/t/big.bin", { format: "bytes" });
  assert.equal(back.length, big.length);
  assert.ok(Buffer.from(back).equals(Buffer.from(big)));
});

test("list (with depth), exists, getInfo", async () => {
  const one = await sbx.files.list("/tmp/t");
  const names = one.map((e) => e.name).sort();
  assert.deepEqual(names, ["big.bin", "blob.bin", "empty", "hello.txt", "many", "streamed.txt"]);
  const many = one.find((e) => e.name === "many");
  assert.equal(many.type, "dir");
  assert.equal(many.path, "/tmp/t/many");
  assert.match(many.permissions, /^d[rwx-]{9}$/);
  const deep = await sbx.files.list("/tmp/t", { depth: 2 });
  assert.ok(deep.some((e) => e.path === "/tmp/t/many/c.bin" && e.size === 3));
  assert.equal(await sbx.files.exists("/tmp/t/hello.txt"), true);
  assert.equal(await sbx.files.exists("/tmp/t/nothing-here"), false);
  const info = await sbx.files.getInfo("/tmp/t/hello.txt");
  assert.equal(info.type, "file");
  assert.equal(info.size, 15);
  assert.equal(info.permissions, "-rw-r--r--");
  assert.equal(info.mode, 0o644);
  assert.equal(info.owner, "root");
  assert.equal(info.group, "root");
  assert.ok(Math.abs(info.modifiedTime.getTime() - Date.now()) < 120_000);
  await assert.rejects(sbx.files.getInfo("/tmp/t/nothing-here"), FileNotFoundError);
  await assert.rejects(sbx.files.list("/tmp/t/hello.txt"), InvalidArgumentError);
});

test("makeDir, rename, remove", async () => {
  assert.equal(await sbx.files.makeDir("/tmp/m/a/b"), true);
  assert.equal(await sbx.files.makeDir("/tmp/m/a/b"), false);
  assert.equal((await sbx.files.getInfo("/tmp/m/a/b")).type, "dir");
  await sbx.files.write("/tmp/m/a/file.txt", "moving");
  const moved = await sbx.files.rename("/tmp/m/a/file.txt", "/tmp/m/moved.txt");
  assert.equal(moved.path, "/tmp/m/moved.txt");
  assert.equal(moved.name, "moved.txt");
  assert.equal(await sbx.files.exists("/tmp/m/a/file.txt"), false);
  assert.equal(await mcpRead("/tmp/m/moved.txt"), "moving");
  await sbx.files.remove("/tmp/m/a");
  assert.equal(await sbx.files.exists("/tmp/m/a"), false);
  await sbx.files.remove("/tmp/m/a"); // already gone: no error, as envd's RemoveAll
  await assert.rejects(sbx.files.rename("/tmp/m/none", "/tmp/m/x"), FileNotFoundError);
});

test("watchDir sees files written, made, renamed and removed (recursive)", async () => {
  await sbx.files.makeDir("/tmp/w");
  const seen = [];
  const handle = await sbx.files.watchDir("/tmp/w", (e) => seen.push(`${e.type}:${e.name}`), { recursive: true });
  await sbx.files.write("/tmp/w/new.txt", "x");
  await sbx.files.makeDir("/tmp/w/sub");
  // A directory made after the watch began is watched too.
  for (let i = 0; i < 50 && !seen.includes("create:sub"); i++) await new Promise((r) => setTimeout(r, 20));
  await sbx.files.write("/tmp/w/sub/deep.txt", "y");
  await sbx.files.rename("/tmp/w/new.txt", "/tmp/w/renamed.txt");
  await sbx.files.remove("/tmp/w/renamed.txt");
  // A change made by a process in the sandbox, not through the API.
  await callTool(mcp, "sandbox_exec", { id: sbx.sandboxId, command: "echo from-exec > /tmp/w/exec.txt" });
  const want = ["create:new.txt", "write:new.txt", "create:sub", "create:sub/deep.txt",
    "rename:new.txt", "create:renamed.txt", "remove:renamed.txt", "create:exec.txt", "write:exec.txt"];
  for (let i = 0; i < 100 && !want.every((w) => seen.includes(w)); i++) await new Promise((r) => setTimeout(r, 50));
  await handle.stop();
  for (const w of want) assert.ok(seen.includes(w), `missing ${w} in ${seen.join(", ")}`);
  // Not recursive: a subdirectory's changes are not reported.
  const flat = [];
  const h2 = await sbx.files.watchDir("/tmp/w", (e) => flat.push(`${e.type}:${e.name}`));
  await sbx.files.write("/tmp/w/sub/ignored.txt", "z");
  await sbx.files.write("/tmp/w/top.txt", "t");
  for (let i = 0; i < 100 && !flat.includes("write:top.txt"); i++) await new Promise((r) => setTimeout(r, 50));
  await h2.stop();
  assert.ok(flat.includes("write:top.txt"), flat.join(", "));
  assert.ok(!flat.some((e) => e.includes("ignored")), flat.join(", "));
  await assert.rejects(sbx.files.watchDir("/tmp/no-such-dir", () => {}), FileNotFoundError);
});

test("the polling watcher: CreateWatcher, GetWatcherEvents, RemoveWatcher", async () => {
  const rpc = async (method, body) => {
    const r = await fetch(`${base}/filesystem.Filesystem/${method}`, {
      method: "POST", headers: envdHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  await sbx.files.makeDir("/tmp/p");
  const created = await rpc("CreateWatcher", { path: "/tmp/p" });
  assert.equal(created.status, 200);
  assert.match(created.body.watcherId, /^[0-9a-f]{32}$/);
  await sbx.files.write("/tmp/p/one.txt", "1");
  let events = [];
  for (let i = 0; i < 50 && !events.some((e) => e.type === "EVENT_TYPE_WRITE"); i++) {
    const got = await rpc("GetWatcherEvents", { watcherId: created.body.watcherId });
    assert.equal(got.status, 200);
    events = events.concat(got.body.events);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(events.some((e) => e.name === "one.txt" && e.type === "EVENT_TYPE_CREATE"), JSON.stringify(events));
  assert.equal((await rpc("RemoveWatcher", { watcherId: created.body.watcherId })).status, 200);
  const gone = await rpc("GetWatcherEvents", { watcherId: created.body.watcherId });
  assert.equal(gone.status, 404);
  assert.equal(gone.body.code, "not_found");
});

test("uploadUrl and downloadUrl work with plain fetch; a bad signature is refused", async () => {
  const up = await sbx.uploadUrl("/tmp/u/up.txt");
  assert.match(up, /signature=v1_/);
  const form = new FormData();
  form.append("file", new Blob(["through a signed URL"]), "up.txt");
  let r = await fetch(up, { method: "POST", body: form });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), [{ name: "up.txt", type: "file", path: "/tmp/u/up.txt" }]);
  const down = await sbx.downloadUrl("/tmp/u/up.txt", { useSignatureExpiration: 60 });
  assert.match(down, /signature_expiration=\d+/);
  r = await fetch(down);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), "through a signed URL");
  assert.equal(await mcpRead("/tmp/u/up.txt"), "through a signed URL");
  // Tampered with: another path, another operation, a wrong signature, an expired one.
  r = await fetch(down.replace("up.txt", "other.txt"));
  assert.equal(r.status, 401);
  r = await fetch(up.replace("signature=v1_", "signature=v1_x"), { method: "POST", body: form });
  assert.equal(r.status, 401);
  assert.match((await r.json()).message, /invalid signature/);
  r = await fetch((await sbx.downloadUrl("/tmp/u/up.txt")).replace(/^/, ""), { method: "POST", body: form });
  assert.equal(r.status, 401); // a read signature does not allow a write
  const expired = new URL(down);
  expired.searchParams.set("signature_expiration", String(Math.floor(Date.now() / 1000) - 10));
  r = await fetch(expired);
  assert.equal(r.status, 401);
  assert.equal(await mcpRead("/tmp/u/up.txt"), "through a signed URL");
  await serverServes();
});

test("bad input: paths outside the sandbox, an unknown user, missing files", async () => {
  await assert.rejects(sbx.files.read("../../etc/passwd"), (e) => e instanceof InvalidArgumentError && /\.\./.test(e.message));
  await assert.rejects(sbx.files.write("/tmp/../../x", "no"), InvalidArgumentError);
  await assert.rejects(sbx.files.list("../.."), InvalidArgumentError);
  await assert.rejects(sbx.files.read("/tmp/t/hello.txt", { user: "nobody-here" }), (e) => e.name === "AuthenticationError");
  await assert.rejects(sbx.files.read("/tmp/nothing-here.txt"), FileNotFoundError);
  let r = await fetch(`${base}/files?path=/tmp`, { headers: envdHeaders() });
  assert.equal(r.status, 400);
  assert.match((await r.json()).message, /is a directory/);
  r = await fetch(`${base}/files?path=/tmp/t/hello.txt`, { headers: { "E2b-Sandbox-Id": sbx.sandboxId, "X-Access-Token": "0".repeat(64) } });
  assert.equal(r.status, 401);
  // "signature=" in another parameter is no signature: the access token is still needed.
  for (const q of ["xsignature=v1_abc", "signature_expiration=99999999999", "signature="]) {
    r = await fetch(`${base}/files?path=/tmp/t/hello.txt&${q}`, { headers: { "E2b-Sandbox-Id": sbx.sandboxId } });
    assert.equal(r.status, 401, q);
    r = await fetch(`${base}/files?path=/tmp/t/hello.txt&${q}`);
    assert.ok(r.status === 401 || r.status === 404, `${q}: ${r.status}`); // not E2B's, or refused
  }
  await serverServes();
});

// A raw POST to /files: the response's status and body, however far the upload got.
function rawUpload(path, headers, write) {
  return new Promise((resolve, reject) => {
    const url = new URL(`${base}/files?path=${encodeURIComponent(path)}`);
    const req = http.request(url, { method: "POST", headers: envdHeaders(headers) }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    write(req);
  });
}

test("an oversized upload is refused with 413 and writes nothing", async () => {
  // A declared length past the cap: refused before a byte of the body is read.
  const declared = await rawUpload("/tmp/huge.bin",
    { "Content-Type": "application/octet-stream", "Content-Length": String(256 * 1024 * 1024 + 1) },
    (req) => req.flushHeaders());
  assert.equal(declared.status, 413);
  assert.match(JSON.parse(declared.body).message, /too large/);
  // Chunked past the cap: refused when the cap is passed.
  const chunk = Buffer.alloc(4 * 1024 * 1024, 7);
  const chunked = await rawUpload("/tmp/huge2.bin", { "Content-Type": "application/octet-stream" }, (req) => {
    let sent = 0;
    const pump = () => {
      while (sent <= 300 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) return req.once("drain", pump);
      }
      req.end();
    };
    req.on("response", () => req.destroy());
    pump();
  });
  assert.equal(chunked.status, 413);
  assert.equal(await sbx.files.exists("/tmp/huge.bin"), false);
  assert.equal(await sbx.files.exists("/tmp/huge2.bin"), false);
  // At the cap exactly, the upload goes through.
  const atCap = await rawUpload("/tmp/at-cap.bin",
    { "Content-Type": "application/octet-stream", "Content-Length": String(256 * 1024 * 1024) },
    (req) => {
      const big = Buffer.alloc(256 * 1024 * 1024, 1);
      big[big.length - 1] = 9;
      req.end(big);
    });
  // It fits the sandbox's disk, or gets 507 with nothing left behind (the pieces of a file
  // too large for one write go to a temporary name that is removed).
  if (atCap.status === 200) {
    assert.equal((await sbx.files.getInfo("/tmp/at-cap.bin")).size, 256 * 1024 * 1024);
    await sbx.files.remove("/tmp/at-cap.bin");
  } else {
    assert.equal(atCap.status, 507, atCap.body);
    assert.match(JSON.parse(atCap.body).message, /No space left/);
    const left = (await sbx.files.list("/tmp")).map((e) => e.name);
    assert.ok(!left.some((n) => n.startsWith("at-cap.bin")), left.join(", "));
  }
  await serverServes();
}, { timeoutMs: 300_000 });

test("a malformed multipart body gets a clear 400 and writes nothing", async () => {
  const post = (type, body) => fetch(`${base}/files`, { method: "POST", headers: envdHeaders({ "Content-Type": type }), body });
  const cases = [
    ["multipart/form-data", "--x\r\n\r\nno boundary parameter\r\n--x--\r\n", /boundary/],
    ["multipart/form-data; boundary=x", "no boundary line at all", /no boundary line/],
    ["multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="file"; filename="/tmp/mp/a.txt"\r\n\r\ncut off', /closing boundary/],
    ["multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="file"; filename="/tmp/mp/a.txt"\r\nno blank line', /blank line/],
    ["multipart/form-data; boundary=x", '--x\r\nContent-Disposition: attachment; name="file"\r\n\r\nx\r\n--x--\r\n', /form-data/],
    ["multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--x--\r\n', /no part named "file"/],
    ["text/plain", "hello", /Content-Type/],
  ];
  for (const [type, body, why] of cases) {
    const r = await post(type, body);
    assert.equal(r.status, 400, `${type} ${JSON.stringify(body)}`);
    assert.match((await r.json()).message, why);
  }
  // The good part of a body whose second part is broken is not written either.
  const r = await post("multipart/form-data; boundary=x",
    '--x\r\nContent-Disposition: form-data; name="file"; filename="/tmp/mp/good.txt"\r\n\r\ngood\r\n' +
    '--x\r\nContent-Disposition: form-data; name="file"; filename="/tmp/mp/bad.txt"\r\n\r\ncut');
  assert.equal(r.status, 400);
  assert.equal(await sbx.files.exists("/tmp/mp"), false);
  await serverServes();
});

test("every call is in the sandbox's activity", async () => {
  const ev = await callTool(mcp, "sandbox_events", { id: sbx.sandboxId, limit: 500 });
  const tools = new Set(ev.events.map((e) => e.detail?.tool ?? e.tool).filter(Boolean));
  for (const t of ["e2b files write", "e2b files read", "e2b filesystem.Filesystem/ListDir",
    "e2b filesystem.Filesystem/Stat", "e2b filesystem.Filesystem/WatchDir"])
    assert.ok(tools.has(t), `no ${t} in ${[...tools].join(", ")}`);
});
