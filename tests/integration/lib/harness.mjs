// Helpers for warren's integration tests: a real MCP client (@modelcontextprotocol/sdk)
// drives the real `warren` binary over stdio or Streamable HTTP.
//
// A test file registers cases with test(name, fn); they run one after another once the
// module has been evaluated. The process exits 0 when all pass, 1 when any fails, and 77
// (ctest's SKIP_RETURN_CODE) when the file or every case was skipped. Everything a helper
// starts (servers, clients, temp dirs) is cleaned up when the run ends, even on failure.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import Ajv from "ajv";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const verbose = !!process.env.WARREN_TEST_VERBOSE;
const keepTemp = !!process.env.WARREN_KEEP_TMP;
const STDERR_TAIL_BYTES = 64 * 1024;
const LISTEN_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = Number(process.env.WARREN_TEST_TIMEOUT_MS ?? 120_000);

// ---- cleanup ------------------------------------------------------------------------

const cleanups = []; // async functions, run last-registered first
const children = new Set(); // processes to SIGKILL if we exit without cleaning up

/** Registers fn to run when the test run ends (in reverse order of registration). */
export function onCleanup(fn) {
  cleanups.push(fn);
}

async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (e) {
      console.error(`cleanup failed: ${e?.stack ?? e}`);
    }
  }
}

process.on("exit", () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

// ---- paths --------------------------------------------------------------------------

/** Path of the warren binary: $WARREN_BUILD_DIR/warren, else <repo>/build/warren. */
export function warrenBinary() {
  const dir = process.env.WARREN_BUILD_DIR ?? join(repoRoot, "build");
  const bin = resolve(dir, "warren");
  if (!existsSync(bin)) throw new Error(`no warren binary at ${bin}; build first or set WARREN_BUILD_DIR`);
  return bin;
}

/** True when something is mounted at or below dir (a leaked jail or VM mount, say). */
export function mountedBelow(dir) {
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  const mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  return mountinfo.split("\n").some((line) => {
    const point = unescape(line.split(" ")[4] ?? "");
    return point === dir || point.startsWith(dir + "/");
  });
}

/**
 * Unmounts the sandbox and snapshot disks (ext4 on a loop device, on a directory named
 * disk) below dir: a snapshot keeps its disk mounted read-only in warren's namespace for as
 * long as it exists, and a test may leave snapshots behind. Lazily, so that the loop
 * devices go once nothing holds them.
 */
export function unmountDisksBelow(dir) {
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const point = unescape(line.split(" ")[4] ?? "");
    if (!point.startsWith(dir + "/") || !point.endsWith("/disk") || !/ - ext4 \/dev\/loop/.test(line)) continue;
    try {
      execFileSync("umount", ["-l", point], { stdio: "ignore" });
    } catch {}
  }
}

function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => {
    if (keepTemp) return console.error(`kept ${dir}`);
    unmountDisksBelow(dir);
    if (mountedBelow(dir)) return console.error(`not removing ${dir}: something is mounted below it`);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A fresh, empty state directory, removed when the run ends ($WARREN_KEEP_TMP keeps it). */
export function tempStateDir() {
  return tempDir("warren-it-state-");
}

/** A temporary directory removed when the run ends. */
export function tempWorkDir(prefix = "warren-it-") {
  return tempDir(prefix);
}

// ---- packages --------------------------------------------------------------------------

/**
 * Builds a Debian package with dpkg-deb: `name` (version 1.0, architecture all) installs
 * /usr/share/<name>/hello with `text`. Returns its bytes as base64, for sandbox_write_file.
 */
export function buildDeb(name, text = "hello from a package\n") {
  const dir = tempDir("warren-it-deb-");
  const root = join(dir, "root");
  mkdirSync(join(root, "DEBIAN"), { recursive: true });
  mkdirSync(join(root, "usr/share", name), { recursive: true });
  writeFileSync(join(root, "DEBIAN/control"),
    `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: warren tests <test@warren.invalid>\n` +
    `Description: a package built by warren's tests\n`);
  writeFileSync(join(root, "usr/share", name, "hello"), text);
  execFileSync("dpkg-deb", ["--root-owner-group", "-b", root, join(dir, `${name}.deb`)], { stdio: "ignore" });
  return readFileSync(join(dir, `${name}.deb`)).toString("base64");
}

// ---- repositories -------------------------------------------------------------------

const gitEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "warren test",
  GIT_AUTHOR_EMAIL: "test@warren.invalid",
  GIT_COMMITTER_NAME: "warren test",
  GIT_COMMITTER_EMAIL: "test@warren.invalid",
};

/** Runs git in dir and returns its trimmed stdout. */
export function git(dir, ...args) {
  return execFileSync("git", ["-C", dir, ...args], { env: gitEnv, encoding: "utf8" }).trim();
}

/**
 * Creates a git repository with one commit on branch main and returns its path.
 * files maps a relative path to its content (string or Buffer) or to
 * {content, mode} (mode e.g. 0o755) or {symlink: target}.
 */
export function makeGitRepo(files = { "README.md": "hello\n" }) {
  const dir = tempDir("warren-it-repo-");
  git(dir, "init", "-q", "-b", "main");
  for (const [path, spec] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    if (spec && typeof spec === "object" && "symlink" in spec) {
      symlinkSync(spec.symlink, full);
      continue;
    }
    const isPlain = typeof spec === "string" || Buffer.isBuffer(spec);
    writeFileSync(full, isPlain ? spec : spec.content);
    if (!isPlain && spec.mode !== undefined) chmodSync(full, spec.mode);
  }
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "--allow-empty", "-m", "initial");
  return dir;
}

// ---- servers and clients ------------------------------------------------------------

// The SDK's stdio transport passes only a few variables to the server: keep the
// sanitizer settings, so that an ASan/UBSan build reports into ASAN_OPTIONS' log_path.
function sanitizerEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(A|UB|L)SAN_OPTIONS$/.test(k)));
}

// Keeps the last STDERR_TAIL_BYTES of a stream (the pipe must be drained or the server
// blocks on a full pipe) and echoes it when WARREN_TEST_VERBOSE is set.
function captureTail(stream) {
  const state = { text: "" };
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    if (verbose) process.stderr.write(chunk);
    state.text = (state.text + chunk).slice(-STDERR_TAIL_BYTES);
  });
  return state;
}

function newClient() {
  return new Client({ name: "warren-integration-tests", version: "0.1.0" });
}

/**
 * Starts `warren mcp --backend jail --state-dir D [args]` and returns an SDK Client
 * connected to it over stdio. client.stderrTail() returns the server's recent stderr.
 * The client (and with it the server) is closed when the run ends.
 */
export async function connectStdio({ stateDir, args = [], env = {} } = {}) {
  const transport = new StdioClientTransport({
    command: warrenBinary(),
    args: ["mcp", "--backend", "jail", "--state-dir", stateDir ?? tempStateDir(), ...args],
    env: { ...getDefaultEnvironment(), ...sanitizerEnv(), ...env },
    stderr: "pipe",
  });
  const tail = captureTail(transport.stderr);
  const client = newClient();
  client.stderrTail = () => tail.text;
  onCleanup(() => client.close());
  try {
    await client.connect(transport);
  } catch (e) {
    throw new Error(`connecting to warren over stdio: ${e.message}\n--- warren stderr ---\n${tail.text}`);
  }
  return client;
}

/**
 * Spawns `warren serve --listen 127.0.0.1:0 --backend jail --state-dir D [args]` with
 * bearer token `token` (--auth none when token is null) and waits for the line
 * `warren: listening on URL`. Returns {url, process, stderrTail(), stop()}; the server is
 * stopped when the run ends.
 */
export async function startHttpServer({ stateDir, token = null, args = [] } = {}) {
  const authArgs = token === null ? ["--auth", "none"] : [];
  const env = { ...process.env };
  if (token === null) delete env.WARREN_TOKEN;
  else env.WARREN_TOKEN = token;
  const argv = ["serve", "--listen", "127.0.0.1:0", "--backend", "jail"];
  argv.push("--state-dir", stateDir ?? tempStateDir(), ...authArgs, ...args);
  const child = spawn(warrenBinary(), argv, {
    env,
    stdio: ["ignore", verbose ? "inherit" : "ignore", "pipe"],
  });
  children.add(child);
  const tail = captureTail(child.stderr);
  const stop = () => stopProcess(child);
  onCleanup(stop);
  const url = await waitForListening(child, tail);
  return { url, process: child, stderrTail: () => tail.text, stop };
}

function waitForListening(child, tail) {
  return new Promise((resolvePromise, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`warren serve ${why}\n--- warren stderr ---\n${tail.text}`));
    };
    const timer = setTimeout(
      () => fail(`did not print its URL within ${LISTEN_TIMEOUT_MS} ms`),
      LISTEN_TIMEOUT_MS,
    );
    const onExit = (code, signal) => fail(`exited early (${signal ?? code})`);
    const onError = (e) => fail(`could not start: ${e.message}`);
    const onData = () => {
      const m = tail.text.match(/^warren: listening on (http:\/\/\S+\/mcp)$/m);
      if (!m) return;
      clearTimeout(timer);
      child.off("exit", onExit).off("error", onError);
      child.stderr.off("data", onData);
      resolvePromise(m[1]);
    };
    child.on("exit", onExit).on("error", onError);
    child.stderr.on("data", onData);
  });
}

// SIGTERM, then SIGKILL if the process has not exited after 5 s.
async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

/** An SDK Client connected to url over Streamable HTTP, with `Authorization: Bearer token`. */
export async function connectHttp(url, token = null) {
  const headers = token === null ? {} : { Authorization: `Bearer ${token}` };
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = newClient();
  onCleanup(() => client.close());
  await client.connect(transport);
  return client;
}

/**
 * Registers a cleanup that destroys every sandbox left in stateDir: sandboxes outlive
 * the servers that made them, so a failed test would otherwise leak jails (and their
 * mounts would keep the state directory from being removed). Call it right after making
 * the state directory so that it runs before the directory is removed.
 */
export function sweepSandboxesAtEnd(stateDir) {
  onCleanup(() => sweepSandboxes(stateDir));
}

/** Starts a fresh `warren mcp` on stateDir and destroys every sandbox it lists. */
export async function sweepSandboxes(stateDir) {
  const transport = new StdioClientTransport({
    command: warrenBinary(),
    args: ["mcp", "--backend", "jail", "--state-dir", stateDir],
    env: { ...getDefaultEnvironment(), ...sanitizerEnv() },
    stderr: "pipe",
  });
  const tail = captureTail(transport.stderr);
  const client = newClient();
  try {
    const quick = { timeout: 20_000 }; // a broken server must not hold the run for minutes
    await client.connect(transport, quick);
    const listed = await client.callTool({ name: "sandbox_list", arguments: {} }, undefined, quick);
    for (const sb of listed.structuredContent?.sandboxes ?? []) {
      const r = await client.callTool({ name: "sandbox_destroy", arguments: { id: sb.id } }, undefined, quick);
      if (r.isError) {
        console.error(`cleanup: destroying ${sb.id}: ${resultText(r)}`);
        if (sb.pid) {
          try {
            process.kill(sb.pid, "SIGKILL");
          } catch {}
        }
      }
    }
  } catch (e) {
    console.error(`cleanup: sweeping sandboxes in ${stateDir}: ${e.message}\n${tail.text}`);
  } finally {
    await client.close().catch(() => {});
  }
  // Last resort: any process whose root is a sandbox of this state directory.
  for (const pid of sandboxProcesses(stateDir)) {
    console.error(`cleanup: killing leftover sandbox process ${pid} of ${stateDir}`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
}

/** Pids of live processes whose root filesystem is a sandbox layer under stateDir. */
export function sandboxProcesses(stateDir) {
  const needle = `${stateDir}/sandboxes/`;
  const pids = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z") continue;
      const root = readFileSync(`/proc/${name}/mountinfo`, "utf8").split("\n").find((l) => l.split(" ")[4] === "/");
      if (root && root.includes(needle)) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/**
 * Spawns `warren mcp --backend jail --state-dir D [args]` without an MCP client: the test
 * writes JSON-RPC lines itself. Returns {process, send(obj|string), next(timeoutMs),
 * request(method, params), close(), stderrTail()}; next() resolves with the next message
 * the server wrote (every stdout line must parse as JSON).
 */
export function spawnRawStdio({ stateDir, args = [] } = {}) {
  const child = spawn(
    warrenBinary(),
    ["mcp", "--backend", "jail", "--state-dir", stateDir ?? tempStateDir(), ...args],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  children.add(child);
  const tail = captureTail(child.stderr);
  const received = [];
  const waiting = [];
  let buffered = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = { unparseable: line };
      }
      if (waiting.length) waiting.shift()(msg);
      else received.push(msg);
    }
  });
  const next = (timeoutMs = 10_000) =>
    new Promise((resolvePromise, reject) => {
      if (received.length) return resolvePromise(received.shift());
      const timer = setTimeout(() => {
        const i = waiting.indexOf(done);
        if (i >= 0) waiting.splice(i, 1);
        reject(new Error(`no message from warren within ${timeoutMs} ms\n${tail.text}`));
      }, timeoutMs);
      const done = (m) => {
        clearTimeout(timer);
        resolvePromise(m);
      };
      waiting.push(done);
    });
  const send = (msg) => child.stdin.write((typeof msg === "string" ? msg : JSON.stringify(msg)) + "\n");
  let nextId = 1;
  const request = async (method, params) => {
    const id = nextId++;
    send({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
    for (;;) {
      const m = await next();
      if (m.id === id) return m;
    }
  };
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end();
    const exited = new Promise((r) => child.once("exit", r));
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
    children.delete(child);
  };
  onCleanup(close);
  return { process: child, send, next, request, close, stderrTail: () => tail.text };
}

// ---- processes, files, waiting ------------------------------------------------------

/** True when pid exists and is not a zombie (a dead sandbox waits for init to reap it). */
export function processRuns(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Polls fn until it returns something truthy (returned) or timeoutMs passes (fails). */
export async function waitFor(what, fn, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every file under dir but .git: path -> "file:<mode>:<sha256>", "dir:<mode>" or "symlink:<target>". */
export function fileTree(dir) {
  const out = {};
  const walk = (rel) => {
    for (const name of readdirSync(join(dir, rel))) {
      if (rel === "" && name === ".git") continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isSymbolicLink()) out[r] = `symlink:${readlinkSync(join(dir, r))}`;
      else if (st.isDirectory()) {
        out[r] = `dir:${st.mode}`;
        walk(r);
      } else out[r] = `file:${st.mode}:${createHash("sha256").update(readFileSync(join(dir, r))).digest("hex")}`;
    }
  };
  walk("");
  return out;
}

// ---- tool calls and schemas ---------------------------------------------------------

const ajv = new Ajv({ allErrors: true, strict: false });
const outputSchemas = new WeakMap(); // client -> Map(tool name -> validate function)

/** Asserts that value matches the JSON Schema schema; what names it in the message. */
export function assertMatchesSchema(schema, value, what = "value") {
  const validate = ajv.compile(schema);
  if (!validate(value)) {
    const shown = JSON.stringify(value, null, 2);
    assert.fail(`${what} does not match its schema: ${ajv.errorsText(validate.errors)}\n${shown}`);
  }
}

async function outputValidator(client, name) {
  if (!outputSchemas.has(client)) {
    const { tools } = await client.listTools();
    const withSchema = tools.filter((t) => t.outputSchema);
    outputSchemas.set(client, new Map(withSchema.map((t) => [t.name, ajv.compile(t.outputSchema)])));
  }
  return outputSchemas.get(client).get(name);
}

function resultText(result) {
  return (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

/**
 * Calls tool name with args; asserts the call succeeded (isError false) and that its
 * structuredContent matches the tool's outputSchema, and returns structuredContent.
 */
export async function callTool(client, name, args = {}, options = {}) {
  const result = await client.callTool({ name, arguments: args }, undefined, options);
  if (result.isError) assert.fail(`${name} failed: ${resultText(result)}`);
  const validate = await outputValidator(client, name);
  if (validate && !validate(result.structuredContent)) {
    const why = ajv.errorsText(validate.errors);
    assert.fail(`${name}: structuredContent does not match outputSchema: ${why}`);
  }
  return result.structuredContent;
}

/** Calls tool name with args, asserts it failed as a tool (isError true); returns the text. */
export async function callToolError(client, name, args = {}) {
  const result = await client.callTool({ name, arguments: args });
  const returned = JSON.stringify(result.structuredContent);
  assert.equal(result.isError, true, `${name} was expected to fail but returned ${returned}`);
  return resultText(result);
}

// ---- skipping and the runner --------------------------------------------------------

class Skip extends Error {}

/** Inside a test: marks it skipped with a reason. Outside: skips the whole file (exit 77). */
export function skip(reason) {
  if (running) throw new Skip(reason);
  console.log(`skipped: ${reason}`);
  process.exit(77);
}

/** Skips (exit 77) unless running as root: the jail backend needs it. */
export function skipUnlessRoot(reason = "needs root for the jail backend") {
  if (process.getuid?.() !== 0) skip(reason);
}

const tests = [];
let running = false;
let scheduled = false;

/** Registers a test case; cases run sequentially after the file has been evaluated. */
export function test(name, fn, { timeoutMs = TEST_TIMEOUT_MS } = {}) {
  tests.push({ name, fn, timeoutMs });
  if (!scheduled) {
    scheduled = true;
    setImmediate(runAll);
  }
}

function withTimeout(promise, ms, name) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// WARREN_TEST_ONLY=<regex>: run only the cases whose names match (the others are skipped).
const only = process.env.WARREN_TEST_ONLY ? new RegExp(process.env.WARREN_TEST_ONLY) : null;

async function runOne({ name, fn, timeoutMs }) {
  const started = Date.now();
  if (only && !only.test(name)) {
    console.log(`ok - ${name} # SKIP not matched by WARREN_TEST_ONLY`);
    return "skipped";
  }
  try {
    await withTimeout(Promise.resolve().then(fn), timeoutMs, name);
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
    return "passed";
  } catch (e) {
    if (e instanceof Skip) {
      console.log(`ok - ${name} # SKIP ${e.message}`);
      return "skipped";
    }
    console.log(`not ok - ${name}\n${String(e?.stack ?? e).replace(/^/gm, "    ")}`);
    return "failed";
  }
}

async function runAll() {
  running = true;
  const counts = { passed: 0, failed: 0, skipped: 0 };
  console.log(`1..${tests.length}`);
  for (const t of tests) counts[await runOne(t)]++;
  running = false;
  await runCleanups();
  console.log(`# ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  process.exit(counts.failed ? 1 : counts.passed ? 0 : 77);
}
