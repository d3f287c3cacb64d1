// E2B's control plane and API keys: the real `e2b` SDK (pinned in package.json) against
// `warren serve` (jail backend; one qemu case at the end): create with metadata and
// envVars, getInfo, list with metadata and state filters and paging, setTimeout, pause and
// connect, getMetrics, kill; the same sandboxes through MCP. Keys made, listed and revoked
// with `warren key` while the server runs, accepted by the SDK, /mcp and the UI sign-in.
// Bad input (malformed JSON, oversized bodies, caps, unmappable options) gets clear
// 4xx answers and the server keeps serving.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

import { AuthenticationError, Sandbox, SandboxError, SandboxNotFoundError } from "e2b";

import {
  callTool,
  connectHttp,
  skip,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
  warrenBinary,
} from "./lib/harness.mjs";

skipUnlessRoot();
process.env.WARREN_METRICS_INTERVAL_MS = "500"; // metrics samples twice a second

const token = "e2b_" + "0123456789abcdef".repeat(2) + "01234567"; // the SDK checks ^e2b_[0-9a-f]+$
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const server = await startHttpServer({ stateDir, token });
const base = server.url.replace(/\/mcp$/, "");
const opts = { apiUrl: base, sandboxUrl: base, apiKey: token };
const mcp = await connectHttp(server.url, token);

const warrenKey = (...args) =>
  execFileSync(warrenBinary(), ["key", ...args, "--state-dir", stateDir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

// A raw control-plane request, as the SDK sends it.
async function api(method, path, { body, key = token, headers = {} } = {}) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { "X-API-Key": key, "Content-Type": "application/json", ...headers },
    body,
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: text ? JSON.parse(text) : null };
}

async function mcpSandbox(id) {
  const { sandboxes } = await callTool(mcp, "sandbox_list");
  return sandboxes.find((s) => s.id === id);
}

async function activity(id) {
  const { events } = await callTool(mcp, "sandbox_events", { id, kind: "tool" });
  return events.map((e) => (typeof e.detail === "string" ? JSON.parse(e.detail) : e.detail));
}

let sbx; // the first sandbox, used across cases

test("create with metadata and envVars: getInfo, MCP sandbox_list and sandbox_exec see the same sandbox", async () => {
  sbx = await Sandbox.create({ ...opts, metadata: { owner: "ci", "with space": "a=b&c" }, envs: { GREETING: "hello e2b" }, timeoutMs: 120_000 });
  assert.match(sbx.sandboxId, /^[0-9a-f]{16}$/);
  const info = await Sandbox.getInfo(sbx.sandboxId, opts);
  assert.equal(info.sandboxId, sbx.sandboxId);
  assert.equal(info.templateId, "host"); // "base" stands for the host image
  assert.deepEqual(info.metadata, { owner: "ci", "with space": "a=b&c" });
  assert.equal(info.state, "running");
  assert.equal(info.cpuCount, 1);
  assert.equal(info.memoryMB, 512);
  assert.equal(info.envdVersion, "0.6.2");
  const lifetime = info.endAt.getTime() - info.startedAt.getTime();
  assert.ok(Math.abs(lifetime - 120_000) <= 2000, `endAt - startedAt = ${lifetime} ms`);
  assert.ok(Math.abs(info.startedAt.getTime() - Date.now()) < 60_000);

  const listed = await mcpSandbox(sbx.sandboxId);
  assert.ok(listed, "sandbox_list shows the E2B sandbox");
  assert.equal(listed.state, "running");
  assert.equal(listed.network, true); // E2B's default: internet access (NAT)
  const run = await callTool(mcp, "sandbox_exec", { id: sbx.sandboxId, command: "printf %s \"$GREETING\"" });
  assert.equal(run.stdout, "hello e2b");
  const calls = await activity(sbx.sandboxId);
  const create = calls.find((c) => c.tool === "e2b create");
  assert.ok(create, `activity has the create: ${JSON.stringify(calls)}`);
  assert.equal(create.client, "e2b");
  assert.equal(create.ok, true);
});

test("the create answer: envdAccessToken is the sandbox's, clientID and envdVersion are set, 201", async () => {
  const r = await api("POST", "/v2/sandboxes", { body: JSON.stringify({ templateID: "base", timeout: 60, metadata: { kind: "raw" }, allow_internet_access: false }) });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.sandboxID, /^[0-9a-f]{16}$/);
  assert.equal(r.json.clientID, "warren");
  assert.equal(r.json.envdVersion, "0.6.2");
  assert.match(r.json.envdAccessToken, /^[0-9a-f]{64}$/);
  assert.equal(r.json.domain, null);
  // allow_internet_access false: no network at all.
  assert.equal((await mcpSandbox(r.json.sandboxID)).network, false);
  // The access token opens envd's /health for that sandbox only... and a wrong one does not.
  const health = await fetch(`${base}/health`, { headers: { "E2b-Sandbox-Id": r.json.sandboxID } });
  assert.equal(health.status, 204);
  assert.equal(await Sandbox.kill(r.json.sandboxID, opts), true);
});

test("network options: allowOut host names become an allow-list; addresses and rules are refused with the reason", async () => {
  const s = await Sandbox.create({ ...opts, allowInternetAccess: false, network: { allowOut: ["deb.debian.org", "*.example.org"] } });
  const listed = await mcpSandbox(s.sandboxId);
  assert.deepEqual(listed.network, { allow: ["deb.debian.org", "*.example.org"], deny: [] });
  const info = await s.getInfo();
  assert.equal(info.allowInternetAccess, false);
  assert.deepEqual(info.network.allowOut, ["deb.debian.org", "*.example.org"]);
  // updateNetwork replaces the policy on the running sandbox.
  await Sandbox.updateNetwork(s.sandboxId, { allowInternetAccess: true }, opts);
  assert.equal((await mcpSandbox(s.sandboxId)).network, true);
  await Sandbox.updateNetwork(s.sandboxId, { allowInternetAccess: false, allowOut: ["pypi.org"] }, opts);
  assert.deepEqual((await mcpSandbox(s.sandboxId)).network, { allow: ["pypi.org"], deny: [] });
  await assert.rejects(Sandbox.updateNetwork(s.sandboxId, { allowOut: ["192.168.0.0/16"], denyOut: ["0.0.0.0/0"] }, opts), (e) => e instanceof SandboxError && /^400: network\.allowOut: '192/.test(e.message));
  assert.deepEqual((await mcpSandbox(s.sandboxId)).network, { allow: ["pypi.org"], deny: [] });
  await s.kill();
  // denyOut host names with internet access: every host but those, through the proxy.
  const d = await Sandbox.create({ ...opts, network: { denyOut: ["evil.example"] } });
  assert.deepEqual((await mcpSandbox(d.sandboxId)).network, { allow: ["*"], deny: ["evil.example"] });
  await d.kill();
  await assert.rejects(
    Sandbox.create({ ...opts, network: { allowOut: ["10.0.0.0/8"], denyOut: ["0.0.0.0/0"] } }),
    (e) => e instanceof SandboxError && /^400: .*address or range/.test(e.message),
  );
  const rules = await api("POST", "/v2/sandboxes", { body: JSON.stringify({ templateID: "base", network: { rules: { a: {} } } }) });
  assert.equal(rules.status, 400);
  assert.match(rules.json.message, /rules/);
  const pause = await api("POST", "/v2/sandboxes", { body: JSON.stringify({ templateID: "base", autoPause: true }) });
  assert.equal(pause.status, 400);
  assert.match(pause.json.message, /autoPause/);
});

test("list: metadata and state filters, paging with X-Next-Token", async () => {
  const made = [];
  for (let i = 0; i < 3; i++) made.push(await Sandbox.create({ ...opts, metadata: { batch: "paging", idx: String(i) } }));
  const ids = made.map((s) => s.sandboxId);
  // Every page but the last is full and says where the next one starts.
  const pager = Sandbox.list({ ...opts, query: { metadata: { batch: "paging" } }, limit: 2 });
  const first = await pager.nextItems();
  assert.equal(first.length, 2);
  assert.equal(pager.hasNext, true);
  const second = await pager.nextItems();
  assert.equal(second.length, 1);
  assert.equal(pager.hasNext, false);
  assert.deepEqual([...first, ...second].map((s) => s.sandboxId).sort(), [...ids].sort());
  // Both pairs must match.
  const one = await Sandbox.list({ ...opts, query: { metadata: { batch: "paging", idx: "1" } } }).nextItems();
  assert.deepEqual(one.map((s) => s.sandboxId), [ids[1]]);
  const special = await Sandbox.list({ ...opts, query: { metadata: { "with space": "a=b&c" } } }).nextItems();
  assert.deepEqual(special.map((s) => s.sandboxId), [sbx.sandboxId]);
  const none = await Sandbox.list({ ...opts, query: { metadata: { batch: "nope" } } }).nextItems();
  assert.deepEqual(none, []);
  // State filter.
  assert.equal(await made[0].pause(), true);
  const paused = await Sandbox.list({ ...opts, query: { state: ["paused"], metadata: { batch: "paging" } } }).nextItems();
  assert.deepEqual(paused.map((s) => [s.sandboxId, s.state]), [[ids[0], "paused"]]);
  const running = await Sandbox.list({ ...opts, query: { state: ["running"], metadata: { batch: "paging" } } }).nextItems();
  assert.deepEqual(running.map((s) => s.sandboxId).sort(), [ids[1], ids[2]].sort());
  // A token this server did not give, a bad limit, a bad state: 400.
  assert.equal((await api("GET", "/v2/sandboxes?nextToken=garbage")).status, 400);
  assert.equal((await api("GET", "/v2/sandboxes?limit=0")).status, 400);
  assert.equal((await api("GET", "/v2/sandboxes?state=sleeping")).status, 400);
  for (const s of made) assert.equal(await s.kill(), true);
});

test("setTimeout moves endAt; the sandbox's TTL is what warren enforces", async () => {
  await sbx.setTimeout(600_000);
  const info = await sbx.getInfo();
  const left = info.endAt.getTime() - Date.now();
  assert.ok(left > 590_000 && left <= 601_000, `endAt is ${left} ms away`);
  const listed = await mcpSandbox(sbx.sandboxId);
  assert.ok(listed.ttl_seconds > 0, JSON.stringify(listed));
  const bad = await api("POST", `/sandboxes/${sbx.sandboxId}/timeout`, { body: JSON.stringify({ timeout: -5 }) });
  assert.equal(bad.status, 400);
  assert.match(bad.json.message, /timeout/);
});

test("pause, pause again (false), connect resumes it (201), connect on a running one (200)", async () => {
  await sbx.setTimeout(600_000);
  assert.equal(await sbx.pause(), true);
  assert.equal((await sbx.getInfo()).state, "paused");
  assert.equal((await mcpSandbox(sbx.sandboxId)).state, "paused");
  assert.equal(await sbx.pause(), false); // 409: already paused
  const resumed = await api("POST", `/v2/sandboxes/${sbx.sandboxId}/connect`, { body: JSON.stringify({ timeout: 60 }) });
  assert.equal(resumed.status, 201, resumed.text);
  assert.equal(resumed.json.sandboxID, sbx.sandboxId);
  assert.equal((await sbx.getInfo()).state, "running");
  assert.equal(await sbx.pause(), true);
  const again = await Sandbox.connect(sbx.sandboxId, opts);
  assert.equal(again.sandboxId, sbx.sandboxId);
  assert.equal((await sbx.getInfo()).state, "running");
  assert.equal((await mcpSandbox(sbx.sandboxId)).state, "running");
  const run = await callTool(mcp, "sandbox_exec", { id: sbx.sandboxId, command: "echo alive" });
  assert.equal(run.stdout, "alive\n");
  const r = await api("POST", `/v2/sandboxes/${sbx.sandboxId}/connect`, { body: JSON.stringify({ timeout: 30 }) });
  assert.equal(r.status, 200);
  assert.equal(r.json.sandboxID, sbx.sandboxId);
  // connect never shortens the timeout.
  const left = (await sbx.getInfo()).endAt.getTime() - Date.now();
  assert.ok(left > 500_000, `endAt ${left} ms away after a shorter connect timeout`);
  const tools = (await activity(sbx.sandboxId)).map((c) => c.tool);
  for (const t of ["e2b pause", "e2b connect", "e2b setTimeout"]) assert.ok(tools.includes(t), `${t} in ${tools}`);
});

test("getMetrics: the SDK's fields from warren's samples", async () => {
  const metrics = await waitFor("two metrics samples", async () => {
    const m = await sbx.getMetrics();
    return m.length >= 2 ? m : null;
  });
  for (const m of metrics) {
    assert.ok(m.timestamp instanceof Date && !Number.isNaN(m.timestamp.getTime()));
    assert.equal(m.cpuCount, 1);
    assert.ok(m.cpuUsedPct >= 0 && m.cpuUsedPct <= 100);
    assert.ok(m.memUsed > 0, `memUsed ${m.memUsed}`);
    assert.equal(m.memTotal, 512 * 1024 * 1024);
    assert.ok(m.diskUsed >= 0);
  }
  // start in the future: nothing.
  const later = await sbx.getMetrics({ start: new Date(Date.now() + 3600_000) });
  assert.deepEqual(later, []);
});

test("unknown sandboxes: kill returns false, getInfo / setTimeout / connect throw SandboxNotFoundError", async () => {
  const ghost = "0123456789abcdef";
  assert.equal(await Sandbox.kill(ghost, opts), false);
  await assert.rejects(Sandbox.getInfo(ghost, opts), SandboxNotFoundError);
  await assert.rejects(Sandbox.setTimeout(ghost, 10_000, opts), SandboxNotFoundError);
  await assert.rejects(Sandbox.connect(ghost, opts), SandboxNotFoundError);
  await assert.rejects(Sandbox.getMetrics(ghost, opts), SandboxNotFoundError);
  const r = await api("GET", `/sandboxes/${ghost}`);
  assert.equal(r.status, 404);
  assert.deepEqual(Object.keys(r.json).sort(), ["code", "message"]);
  assert.equal(r.json.code, 404);
});

test("bad input: malformed JSON, oversized bodies, caps and unknown fields get 400/413; nothing is created", async () => {
  const before = (await callTool(mcp, "sandbox_list")).sandboxes.length;
  const bad = [
    ["{", /not valid JSON/],
    ["[]", /JSON object/],
    [JSON.stringify({ templateID: "base", timeout: "soon" }), /timeout/],
    [JSON.stringify({ templateID: "base", metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }), /at most 64 keys/],
    [JSON.stringify({ templateID: "base", metadata: { k: "v".repeat(1025) } }), /longer than 1024/],
    [JSON.stringify({ templateID: "base", metadata: { k: 1 } }), /must be a string/],
    [JSON.stringify({ templateID: "base", envVars: { "1BAD": "x" } }), /not a variable name/],
    [JSON.stringify({ templateID: "base", envVars: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`V${i}`, "x"])) }), /at most 256/],
    [JSON.stringify({ templateID: "bad template" }), /templateID/],
    [JSON.stringify({ templateID: "base", surprise: 1 }), /unknown field 'surprise'/],
    ["[".repeat(100), /nests deeper/],
  ];
  for (const [body, why] of bad) {
    const r = await api("POST", "/v2/sandboxes", { body });
    assert.equal(r.status, 400, `${body.slice(0, 60)} -> ${r.status} ${r.text}`);
    assert.equal(r.json.code, 400);
    assert.match(r.json.message, why);
  }
  const big = await api("POST", "/v2/sandboxes", { body: JSON.stringify({ templateID: "base", metadata: { k: "x".repeat(70_000) } }) });
  assert.equal(big.status, 413);
  assert.equal(big.json.code, 413);
  // The SDK reports a refused create as a SandboxError carrying the status.
  await assert.rejects(Sandbox.create({ ...opts, metadata: { k: "v".repeat(2000) } }), (e) => e instanceof SandboxError && /^400: metadata/.test(e.message));
  assert.equal((await callTool(mcp, "sandbox_list")).sandboxes.length, before);
  // An unknown template: 404 naming it (a create never starts a pull).
  for (const name of ["no-such-template", "../../etc", "docker.io/library/nothing:1"]) {
    const tpl = await api("POST", "/v2/sandboxes", { body: JSON.stringify({ templateID: name }) });
    assert.equal(tpl.status, 404, `${tpl.status} ${tpl.text}`);
    assert.ok(tpl.json.message.includes(`template '${name}' not found`), tpl.json.message);
  }
  // Still serving.
  assert.equal((await Sandbox.getInfo(sbx.sandboxId, opts)).state, "running");
});

test("a template built with image_build is an E2B templateID", async () => {
  await mcp.callTool({ name: "image_build", arguments: { name: "e2b-tpl", from: "host", run: ["echo made-by-template > /etc/e2b-tpl"] } }, undefined, { timeout: 120_000 });
  const s = await Sandbox.create("e2b-tpl", opts);
  assert.equal((await s.getInfo()).templateId, "e2b-tpl");
  const run = await callTool(mcp, "sandbox_exec", { id: s.sandboxId, command: "cat /etc/e2b-tpl" });
  assert.equal(run.stdout, "made-by-template\n");
  const only = await Sandbox.list({ ...opts, query: { template: "e2b-tpl" } }).nextItems();
  assert.deepEqual(only.map((x) => x.sandboxId), [s.sandboxId]);
  assert.equal(await s.kill(), true);
}, { timeoutMs: 180_000 });

test("snapshots and fork are refused with the reason (501)", async () => {
  await assert.rejects(Sandbox.createSnapshot(sbx.sandboxId, opts), (e) => /^501: .*files only/.test(e.message));
  const fork = await api("POST", `/sandboxes/${sbx.sandboxId}/fork`, { body: "{}" });
  assert.equal(fork.status, 501);
});

// ---- API keys ---------------------------------------------------------------------------

let key, keyId;

test("warren key create / list: the key is printed once, the list never shows it", async () => {
  key = warrenKey("create", "--name", "ci-key").trim();
  assert.match(key, /^e2b_[0-9a-f]{40}$/);
  const list = warrenKey("list");
  assert.match(list, /^NAME\s+ID\s+CREATED\s+LAST USED\s+REVOKED$/m);
  const line = list.split("\n").find((l) => l.startsWith("ci-key "));
  assert.ok(line, list);
  keyId = line.split(/\s+/)[1];
  assert.match(keyId, /^[0-9a-f]{16}$/);
  assert.ok(!list.includes(key.slice(4)), "the key is not in the listing");
  assert.match(line, /\s-\s+-$/); // never used, not revoked
  // Names are unique and checked.
  assert.throws(() => warrenKey("create", "--name", "ci-key"), /exists already/);
  assert.throws(() => warrenKey("create", "--name", "../x"), /invalid key name/);
  assert.ok(!existsSync(join(stateDir, key)));
});

test("a key works for the SDK, as the /mcp bearer token and for the UI sign-in", async () => {
  const kopts = { ...opts, apiKey: key };
  const s = await Sandbox.create(kopts);
  assert.equal((await Sandbox.getInfo(s.sandboxId, kopts)).state, "running");
  const client = await connectHttp(server.url, key);
  const { sandboxes } = await callTool(client, "sandbox_list");
  assert.ok(sandboxes.some((x) => x.id === s.sandboxId));
  const login = await fetch(`${base}/api/login`, { method: "POST", body: JSON.stringify({ token: key }) });
  assert.equal(login.status, 200, await login.text());
  assert.match(login.headers.get("set-cookie") ?? "", /warren_session=/);
  assert.equal(await Sandbox.kill(s.sandboxId, kopts), true);
  const line = warrenKey("list").split("\n").find((l) => l.startsWith("ci-key "));
  assert.match(line, /\d{4}-\d\d-\d\dT\S+Z\s+-$/); // last used is set, not revoked
});

test("wrong and revoked keys: 401 everywhere (the SDK's AuthenticationError); the server token still works", async () => {
  const wrong = "e2b_" + "f".repeat(40);
  await assert.rejects(Sandbox.list({ ...opts, apiKey: wrong }).nextItems(), AuthenticationError);
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { ...opts, apiKey: wrong }), AuthenticationError);
  const r = await api("GET", "/v2/sandboxes", { key: wrong });
  assert.equal(r.status, 401);
  assert.equal(r.json.code, 401);
  // Revoked by name while the server runs: refused from the next request on.
  warrenKey("revoke", "ci-key");
  await assert.rejects(Sandbox.create({ ...opts, apiKey: key }), AuthenticationError);
  const bearer = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } }),
  });
  assert.equal(bearer.status, 401);
  const login = await fetch(`${base}/api/login`, { method: "POST", body: JSON.stringify({ token: key }) });
  assert.equal(login.status, 401);
  const line = warrenKey("list").split("\n").find((l) => l.startsWith("ci-key "));
  assert.match(line, /\d{4}-\d\d-\d\dT\S+Z$/); // revoked at
  assert.throws(() => warrenKey("revoke", "no-such-key"), /no API key/);
  // By id works too, and a second key is unaffected by the first one's revocation.
  const other = warrenKey("create").trim();
  assert.equal((await Sandbox.list({ ...opts, apiKey: other }).nextItems()).length >= 1, true);
  warrenKey("revoke", keyId); // already revoked: no error
  assert.ok((await Sandbox.getInfo(sbx.sandboxId, opts)).sandboxId);
});

test("kill: 204, then the sandbox is gone from E2B and MCP alike", async () => {
  assert.equal(await sbx.kill(), true);
  assert.equal(await mcpSandbox(sbx.sandboxId), undefined);
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId, opts), SandboxNotFoundError);
  assert.equal(await Sandbox.kill(sbx.sandboxId, opts), false);
});

test("--auth none: no key needed, no envdAccessToken; --e2b-base-image picks what 'base' creates", async () => {
  const dir = tempStateDir();
  sweepSandboxesAtEnd(dir);
  // A template name the vmm does not know yet: the error names it, proving the mapping.
  const open = await startHttpServer({ stateDir: dir, token: null, args: ["--e2b-base-image", "no-such-base"] });
  const url = open.url.replace(/\/mcp$/, "");
  const r = await fetch(`${url}/v2/sandboxes`, { method: "POST", headers: { "X-API-Key": "e2b_00" }, body: JSON.stringify({ templateID: "base" }) });
  const body = await r.json();
  assert.equal(r.status, 404, JSON.stringify(body));
  assert.match(body.message, /template 'no-such-base' not found/);
  const h = await fetch(`${url}/v2/sandboxes`, { method: "POST", headers: { "X-API-Key": "e2b_00" }, body: JSON.stringify({ templateID: "host", allow_internet_access: false }) });
  const made = await h.json();
  assert.equal(h.status, 201, JSON.stringify(made));
  assert.equal(made.envdAccessToken, undefined);
  assert.equal(await Sandbox.kill(made.sandboxID, { apiUrl: url, sandboxUrl: url, apiKey: "e2b_00" }), true);
  await open.stop();
});

// ---- one VM ----------------------------------------------------------------------------

test("qemu: create, getInfo and kill a VM sandbox through the SDK (one TCG boot)", async () => {
  const onPath = (bin) => (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => existsSync(join(d, bin)));
  const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
  if (!onPath("qemu-system-x86_64")) skip("qemu-system-x86_64 is not installed");
  if (!existsSync("/usr/lib/qemu/virtiofsd")) skip("/usr/lib/qemu/virtiofsd is not installed");
  if (!existsSync(join(guestDir, "vmlinuz"))) skip(`no guest kernel in ${guestDir}`);
  process.env.WARREN_GUEST_DIR = guestDir;
  process.env.WARREN_QEMU_ACCEL = process.env.WARREN_QEMU_ACCEL ?? "tcg";
  const dir = tempStateDir();
  sweepSandboxesAtEnd(dir);
  const vm = await startHttpServer({ stateDir: dir, token, args: ["--backend", "qemu"] });
  const url = vm.url.replace(/\/mcp$/, "");
  const vopts = { apiUrl: url, sandboxUrl: url, apiKey: token, requestTimeoutMs: 280_000 };
  const s = await Sandbox.create({ ...vopts, allowInternetAccess: false, metadata: { backend: "qemu" } });
  const info = await Sandbox.getInfo(s.sandboxId, vopts);
  assert.equal(info.state, "running");
  assert.deepEqual(info.metadata, { backend: "qemu" });
  const client = await connectHttp(vm.url, token);
  const { sandboxes } = await callTool(client, "sandbox_list");
  assert.equal(sandboxes.find((x) => x.id === s.sandboxId)?.backend, "qemu");
  assert.equal(await Sandbox.kill(s.sandboxId, vopts), true);
  await vm.stop();
}, { timeoutMs: 300_000 });
