// The whole tool surface over stdio with the official SDK client: the handshake, the tool
// list, a sandbox made from a git repository (nested dirs, an executable, a symlink, a
// binary file), file round trips, every exec option (argv, env, cwd, stdin, exit codes,
// signals, output caps, bad UTF-8, timeouts, progress, cancellation), bad inputs, and the
// guarantee that the user's repository on the host is never written.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { McpError } from "@modelcontextprotocol/sdk/types.js";

import {
  callTool,
  callToolError,
  connectStdio,
  fileTree,
  git,
  makeGitRepo,
  processRuns,
  skipUnlessRoot,
  spawnRawStdio,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);

const binaryContent = Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a, 0x00]), randomBytes(4096)]);
const repoFiles = {
  "README.md": "hello from the repo\n",
  "src/deep/nested/dir/file.txt": "nested content\n",
  "bin/run.sh": { content: "#!/bin/sh\necho script ran with $# args: $*\n", mode: 0o755 },
  "link-to-readme": { symlink: "README.md" },
  "data/blob.bin": binaryContent,
};
const repo = makeGitRepo(repoFiles);

const repoBefore = fileTree(repo);

let client;
let sb; // the sandbox most cases share

async function exec(args, options) {
  return callTool(client, "sandbox_exec", { id: sb.id, ...args }, options);
}

// The server answers a trivial call: used after every bad input.
async function assertAlive() {
  const r = await exec({ command: "echo alive" });
  assert.equal(r.stdout, "alive\n");
}

test("initialize: serverInfo and protocol version negotiation (raw stdio)", async () => {
  for (const [asked, expected] of [
    ["2025-11-25", "2025-11-25"],
    ["2025-06-18", "2025-06-18"],
    ["2025-03-26", "2025-03-26"],
    ["1999-01-01", "2025-11-25"], // unknown: answer with our latest, never fail
  ]) {
    const raw = spawnRawStdio({ stateDir });
    const m = await raw.request("initialize", {
      protocolVersion: asked,
      capabilities: { elicitation: {}, extensions: { "x-unknown": { a: 1 } } },
      clientInfo: { name: "raw-client", version: "1" },
    });
    assert.ok(m.result, `initialize(${asked}) failed: ${JSON.stringify(m)}`);
    assert.equal(m.result.protocolVersion, expected, `asked for ${asked}`);
    assert.equal(m.result.serverInfo.name, "warren");
    assert.equal(typeof m.result.serverInfo.version, "string");
    assert.ok(m.result.capabilities.tools, "capabilities.tools missing");
    raw.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    const ping = await raw.request("ping");
    assert.deepEqual(ping.result, {});
    await raw.close();
  }
});

test("initialize with the SDK client", async () => {
  client = await connectStdio({ stateDir });
  assert.equal(client.getServerVersion().name, "warren");
  assert.ok(client.getServerCapabilities().tools);
  await client.ping();
});

test("tools/list: every tool with schemas and all four annotation hints", async () => {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, [
    "image_build",
    "image_delete",
    "image_list",
    "image_pull",
    "sandbox_create",
    "sandbox_destroy",
    "sandbox_diff",
    "sandbox_events",
    "sandbox_exec",
    "sandbox_git_commit",
    "sandbox_git_push",
    "sandbox_list",
    "sandbox_list_dir",
    "sandbox_make_dir",
    "sandbox_metrics",
    "sandbox_move",
    "sandbox_pause",
    "sandbox_read_file",
    "sandbox_remove",
    "sandbox_restart",
    "sandbox_restore",
    "sandbox_resume",
    "sandbox_snapshot",
    "sandbox_stat",
    "sandbox_update",
    "sandbox_write_file",
    "snapshot_delete",
    "snapshot_list",
  ]);
  for (const t of tools) {
    assert.equal(t.inputSchema?.type, "object", `${t.name} inputSchema`);
    assert.equal(t.outputSchema?.type, "object", `${t.name} outputSchema`);
    assert.equal(typeof t.description, "string", `${t.name} description`);
    for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"])
      assert.equal(typeof t.annotations?.[hint], "boolean", `${t.name} annotations.${hint}`);
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.equal(byName.sandbox_list.annotations.readOnlyHint, true);
  assert.equal(byName.sandbox_read_file.annotations.readOnlyHint, true);
  assert.equal(byName.sandbox_destroy.annotations.destructiveHint, true);
  assert.deepEqual(byName.sandbox_exec.inputSchema.required, ["id"]);
});

test("create from a git repo: /workspace shows dirs, the executable, the symlink, the binary", async () => {
  sb = await callTool(client, "sandbox_create", { name: "stdio-main", repo });
  assert.equal(sb.name, "stdio-main");
  assert.equal(sb.state, "running");
  assert.equal(sb.workspace, "/workspace");
  assert.equal(sb.repo, repo);
  assert.equal(sb.commit, git(repo, "rev-parse", "HEAD"));
  assert.equal(sb.memory.configured_mib, 512);
  assert.ok(sb.pid > 0);

  let r = await exec({ command: "cat README.md src/deep/nested/dir/file.txt link-to-readme" });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.equal(r.stdout, "hello from the repo\nnested content\nhello from the repo\n");
  assert.equal(r.signal, null);
  assert.equal(r.timed_out, false);

  r = await exec({ command: "pwd; ls -l /workspace/bin/run.sh /workspace/link-to-readme" });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.match(r.stdout, /^\/workspace\n/);
  assert.match(r.stdout, /^-rwxr-xr-x .* \/workspace\/bin\/run\.sh$/m);
  assert.match(r.stdout, /^l[rwx-]{9} .* \/workspace\/link-to-readme -> README\.md$/m);

  r = await exec({ command: "stat -c '%F %a %s' bin/run.sh data/blob.bin link-to-readme src/deep/nested/dir" });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), [
    `regular file 755 ${Buffer.byteLength(repoFiles["bin/run.sh"].content)}`,
    `regular file 644 ${binaryContent.length}`,
    "symbolic link 777 9",
    "directory 755 4096",
  ]);

  r = await exec({ command: "./bin/run.sh a b" });
  assert.equal(r.stdout, "script ran with 2 args: a b\n");

  r = await exec({ command: "sha256sum data/blob.bin" });
  assert.equal(r.stdout.split(" ")[0], createHash("sha256").update(binaryContent).digest("hex"));

  const blob = await callTool(client, "sandbox_read_file", { id: sb.id, path: "data/blob.bin", encoding: "base64" });
  assert.equal(blob.encoding, "base64");
  assert.equal(blob.size, binaryContent.length);
  assert.equal(blob.truncated, false);
  assert.deepEqual(Buffer.from(blob.content, "base64"), binaryContent);
});

test("write and read files: text, binary, offset/length, append, create_dirs, mode", async () => {
  // Text, absolute and relative paths, multi-byte UTF-8.
  const text = "line one\nzwei: ä ö ü ß\nthree: 🦊\n";
  let w = await callTool(client, "sandbox_write_file", { id: sb.id, path: "x.txt", content: text });
  assert.equal(w.bytes_written, Buffer.byteLength(text));
  let r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "/workspace/x.txt" });
  assert.equal(r.content, text);
  assert.equal(r.encoding, "utf8");
  assert.equal(r.size, Buffer.byteLength(text));
  assert.equal(r.truncated, false);

  // Offset and length on text.
  r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "x.txt", offset: 5, length: 3 });
  assert.equal(r.content, "one");
  assert.equal(r.bytes_read, 3);
  assert.equal(r.truncated, true);

  // Binary through base64, then slices of it.
  const bytes = randomBytes(200_000);
  w = await callTool(client, "sandbox_write_file", {
    id: sb.id,
    path: "/tmp/random.bin",
    content: bytes.toString("base64"),
    encoding: "base64",
  });
  assert.equal(w.bytes_written, bytes.length);
  r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "/tmp/random.bin", encoding: "base64" });
  assert.equal(r.size, bytes.length);
  assert.deepEqual(Buffer.from(r.content, "base64"), bytes);
  r = await callTool(client, "sandbox_read_file", {
    id: sb.id,
    path: "/tmp/random.bin",
    encoding: "base64",
    offset: 12345,
    length: 1000,
  });
  assert.deepEqual(Buffer.from(r.content, "base64"), bytes.subarray(12345, 13345));
  assert.equal(r.truncated, true);
  r = await callTool(client, "sandbox_read_file", {
    id: sb.id,
    path: "/tmp/random.bin",
    encoding: "base64",
    offset: bytes.length - 10,
    length: 1000,
  });
  assert.deepEqual(Buffer.from(r.content, "base64"), bytes.subarray(bytes.length - 10));
  assert.equal(r.truncated, false);
  const sum = await exec({ command: "sha256sum /tmp/random.bin" });
  assert.equal(sum.stdout.split(" ")[0], createHash("sha256").update(bytes).digest("hex"));

  // Binary data read as utf8 is refused with a hint.
  const msg = await callToolError(client, "sandbox_read_file", { id: sb.id, path: "/tmp/random.bin" });
  assert.match(msg, /base64/);

  // Append.
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "log.txt", content: "first\n" });
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "log.txt", content: "second\n", append: true });
  r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "log.txt" });
  assert.equal(r.content, "first\nsecond\n");
  // Without append the file is replaced.
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "log.txt", content: "third\n" });
  r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "log.txt" });
  assert.equal(r.content, "third\n");

  // create_dirs.
  const noDir = await callToolError(client, "sandbox_write_file", { id: sb.id, path: "new/dir/tree/f.txt", content: "x" });
  assert.match(noDir, /create_dirs/);
  await callTool(client, "sandbox_write_file", {
    id: sb.id,
    path: "new/dir/tree/f.txt",
    content: "deep\n",
    create_dirs: true,
  });
  r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "new/dir/tree/f.txt" });
  assert.equal(r.content, "deep\n");

  // mode "0755", then run it.
  await callTool(client, "sandbox_write_file", {
    id: sb.id,
    path: "tools/hello.sh",
    content: "#!/bin/sh\necho hello from a written script\n",
    mode: "0755",
    create_dirs: true,
  });
  const st = await exec({ command: "stat -c %a tools/hello.sh && ./tools/hello.sh" });
  assert.equal(st.stdout, "755\nhello from a written script\n", st.stderr);
  // Integer mode, 0600.
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "secret.txt", content: "s", mode: 0o600 });
  assert.equal((await exec({ command: "stat -c %a secret.txt" })).stdout, "600\n");

  // Missing file.
  const missing = await callToolError(client, "sandbox_read_file", { id: sb.id, path: "no/such/file" });
  assert.match(missing, /no file|not found|No such/i);

  // Empty file.
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "empty", content: "" });
  r = await callTool(client, "sandbox_read_file", { id: sb.id, path: "empty" });
  assert.equal(r.content, "");
  assert.equal(r.size, 0);
});

test("sandbox_list shows the sandbox running with memory in use", async () => {
  const { sandboxes } = await callTool(client, "sandbox_list");
  const mine = sandboxes.find((s) => s.id === sb.id);
  assert.ok(mine, `sandbox ${sb.id} not listed: ${JSON.stringify(sandboxes)}`);
  assert.equal(mine.state, "running");
  assert.equal(mine.name, "stdio-main");
  assert.equal(mine.repo, repo);
  assert.equal(mine.memory.configured_mib, 512);
  assert.ok(mine.memory.usage_bytes > 0, `memory.usage_bytes is ${mine.memory.usage_bytes}`);
});

test("writes in the sandbox never reach the user's repository", async () => {
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "README.md", content: "overwritten by tool\n" });
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "src/deep/new-file.txt", content: "new\n" });
  const r = await exec({
    command:
      "echo via-exec >> src/deep/nested/dir/file.txt && rm data/blob.bin && chmod 600 bin/run.sh && " +
      "mkdir -p made/by/exec && touch made/by/exec/f && ln -sf /etc/passwd link-to-readme && " +
      "rm -rf src/deep/nested && cat README.md",
  });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.equal(r.stdout, "overwritten by tool\n");
  assert.deepEqual(fileTree(repo), repoBefore);
  assert.equal(git(repo, "status", "--porcelain", "--ignored"), "");
  assert.equal(readFileSync(join(repo, "README.md"), "utf8"), "hello from the repo\n");
});

test("exec: argv, env, cwd, stdin, exit codes, signals", async () => {
  // argv: no shell, arguments passed verbatim.
  let r = await exec({ argv: ["printf", "%s|", "a b", "$HOME", "*", ""] });
  assert.equal(r.stdout, "a b|$HOME|*||");
  assert.equal(r.exit_code, 0);

  // env and cwd.
  r = await exec({
    command: 'echo "$FOO|$BAR"; pwd',
    env: { FOO: "foo value", BAR: "with 'quotes' and $dollar" },
    cwd: "/workspace/src/deep",
  });
  assert.equal(r.stdout, "foo value|with 'quotes' and $dollar\n/workspace/src/deep\n");
  r = await exec({ command: "pwd", cwd: "src" }); // relative to /workspace
  assert.equal(r.stdout, "/workspace/src\n");
  r = await exec({ command: "pwd", cwd: "/tmp" });
  assert.equal(r.stdout, "/tmp\n");
  r = await exec({ argv: ["pwd"] });
  assert.equal(r.stdout, "/workspace\n");

  // stdin.
  r = await exec({ command: "tr a-z A-Z; echo; wc -l", stdin: "hello stdin\nsecond line\n" });
  assert.equal(r.stdout, "HELLO STDIN\nSECOND LINE\n\n0\n");
  r = await exec({ argv: ["cat"], stdin: "x".repeat(300_000) });
  assert.equal(r.stdout.length, 300_000);
  r = await exec({ command: "cat; echo done" }); // no stdin: EOF at once, no hang
  assert.equal(r.stdout, "done\n");

  // stderr and non-zero exit codes.
  r = await exec({ command: "echo out; echo err >&2; exit 42" });
  assert.equal(r.exit_code, 42);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  r = await exec({ argv: ["/no/such/program"] });
  assert.notEqual(r.exit_code, 0);

  // Killed by a signal.
  r = await exec({ command: "kill -9 $$" });
  assert.equal(r.signal, 9, JSON.stringify(r));
  assert.equal(r.timed_out, false);
  r = await exec({ command: "kill -TERM $$" });
  assert.equal(r.signal, 15, JSON.stringify(r));
});

test("exec: output cap, bad UTF-8, big output", async () => {
  let r = await exec({ command: "head -c 100000 /dev/zero | tr '\\0' a; head -c 5000 /dev/zero | tr '\\0' e >&2", max_output_bytes: 1000 });
  assert.equal(r.truncated, true);
  assert.equal(r.stdout.length, 1000);
  assert.equal(r.stdout, "a".repeat(1000));
  assert.equal(r.stderr.length, 1000);
  assert.equal(r.exit_code, 0);

  r = await exec({ command: "echo small", max_output_bytes: 1000 });
  assert.equal(r.truncated, false);
  assert.equal(r.stdout, "small\n");

  r = await exec({ command: "echo x", max_output_bytes: 0 });
  assert.equal(r.stdout, "");
  assert.equal(r.truncated, true);

  // Invalid UTF-8 (lone continuation bytes, 0xff, a cut multi-byte char) comes back as a
  // valid JSON string with the good parts intact.
  r = await exec({ command: "printf 'before\\377\\376\\200middle\\342\\202after\\n'; printf '\\300\\300' >&2" });
  assert.equal(r.exit_code, 0);
  assert.ok(r.stdout.startsWith("before"), JSON.stringify(r.stdout));
  assert.ok(r.stdout.includes("middle"), JSON.stringify(r.stdout));
  assert.ok(r.stdout.endsWith("after\n"), JSON.stringify(r.stdout));
  assert.ok(!r.stdout.includes("\u0000"));
  assert.equal(typeof r.stderr, "string");

  // A few MiB of output under the default 1 MiB cap.
  r = await exec({ command: "head -c 3000000 /dev/urandom | base64 -w 100" });
  assert.equal(r.truncated, true);
  assert.equal(r.stdout.length, 1 << 20);
  await assertAlive();
});

test("exec: timeout kills the whole process group", async () => {
  const started = Date.now();
  const r = await exec({ command: "sleep 300 & echo started; sleep 30", timeout_seconds: 1 });
  const took = Date.now() - started;
  assert.equal(r.timed_out, true, JSON.stringify(r));
  assert.equal(r.stdout, "started\n");
  assert.ok(took < 15_000, `timeout of 1 s took ${took} ms`);
  // The background child went with its parent.
  await sleep(500);
  const ps = await exec({ command: "ps -eo pid,args" });
  assert.doesNotMatch(ps.stdout, /sleep (300|30)\b/, ps.stdout);
});

test("exec: progress notifications while a long command runs", async () => {
  const progress = [];
  const r = await exec(
    { command: "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done" },
    { onprogress: (p) => progress.push(p), timeout: 60_000 },
  );
  assert.equal(r.exit_code, 0);
  assert.equal(r.stdout, [1, 2, 3, 4, 5, 6].map((i) => `tick ${i}\n`).join(""));
  assert.ok(progress.length >= 2, `only ${progress.length} progress notifications: ${JSON.stringify(progress)}`);
  for (let i = 1; i < progress.length; i++)
    assert.ok(progress[i].progress > progress[i - 1].progress, `progress not increasing: ${JSON.stringify(progress)}`);
  assert.ok(
    progress.some((p) => /tick \d/.test(p.message ?? "")),
    `no progress message mentions the output: ${JSON.stringify(progress)}`,
  );
});

test("exec: cancellation kills the command", async () => {
  await exec({ command: "rm -f /tmp/not-cancelled" });
  const controller = new AbortController();
  const started = Date.now();
  const call = exec({ command: "sleep 60; touch /tmp/not-cancelled" }, { signal: controller.signal });
  setTimeout(() => controller.abort("test cancels"), 1000);
  await assert.rejects(call);
  assert.ok(Date.now() - started < 10_000);
  await sleep(1500);
  const ps = await exec({ command: "ps -eo pid,args" });
  assert.doesNotMatch(ps.stdout, /sleep 60/, ps.stdout);
  const f = await exec({ command: "test -e /tmp/not-cancelled && echo exists || echo absent" });
  assert.equal(f.stdout, "absent\n");
  await assertAlive();
  // The same for an argv command, cancelled right away.
  const c2 = new AbortController();
  const call2 = exec({ argv: ["sleep", "61"] }, { signal: c2.signal });
  setTimeout(() => c2.abort(), 200);
  await assert.rejects(call2);
  await sleep(1500);
  const ps2 = await exec({ command: "ps -eo pid,args" });
  assert.doesNotMatch(ps2.stdout, /sleep 61/, ps2.stdout);
});

test("bad inputs are tool errors that say what is wrong; the server keeps working", async () => {
  // Unknown tool: a JSON-RPC error.
  await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }), (e) => {
    assert.ok(e instanceof McpError, `not an McpError: ${e}`);
    assert.equal(e.code, -32602);
    return true;
  });
  await assertAlive();

  const cases = [
    ["sandbox_create", { cpus: "two" }, /cpus/],
    ["sandbox_create", { memory_mib: 1 }, /memory_mib/],
    ["sandbox_create", { network: "yes" }, /network/],
    ["sandbox_create", { env: { A: 1 } }, /env/],
    ["sandbox_create", { name: "bad name!" }, /name/],
    ["sandbox_create", { name: "" }, /name/],
    ["sandbox_create", { name: "x".repeat(64) }, /name/],
    ["sandbox_create", { name: "stdio-main" }, /exists/],
    ["sandbox_create", { repo: "/nonexistent/warren/repo" }, /nonexistent\/warren\/repo|not found|No such|does not exist/i],
    ["sandbox_create", { repo: "relative/path" }, /absolute|repo/i],
    ["sandbox_create", { repo, ref: "no-such-branch-or-tag" }, /no-such-branch-or-tag/],
    ["sandbox_create", { ref: "main" }, /repo/],
    ["sandbox_create", { image: "ubuntu:latest" }, /image/],
    ["sandbox_create", { colour: "red" }, /colour/],
    ["sandbox_exec", { command: "true" }, /id/],
    ["sandbox_exec", { id: sb.id }, /command|argv/],
    ["sandbox_exec", { id: sb.id, command: "true", argv: ["true"] }, /command|argv/],
    ["sandbox_exec", { id: sb.id, argv: [] }, /argv/],
    ["sandbox_exec", { id: sb.id, command: 42 }, /command/],
    ["sandbox_exec", { id: sb.id, command: "true", timeout_seconds: 0 }, /timeout_seconds/],
    ["sandbox_exec", { id: sb.id, command: "true", max_output_bytes: 1 << 30 }, /max_output_bytes/],
    ["sandbox_exec", { id: sb.id, command: "true", cwd: "../etc" }, /\.\./],
    ["sandbox_exec", { id: sb.id, command: "true", frobnicate: true }, /frobnicate/],
    ["sandbox_exec", { id: "no-such-sandbox", command: "true" }, /no-such-sandbox/],
    ["sandbox_read_file", { id: sb.id }, /path/],
    ["sandbox_read_file", { id: sb.id, path: "../../etc/passwd" }, /\.\./],
    ["sandbox_read_file", { id: sb.id, path: "/workspace/../etc/shadow" }, /\.\./],
    ["sandbox_read_file", { id: sb.id, path: "README.md", encoding: "latin1" }, /encoding/],
    ["sandbox_read_file", { id: sb.id, path: "README.md", offset: -1 }, /offset/],
    ["sandbox_read_file", { id: "no-such-sandbox", path: "README.md" }, /no-such-sandbox/],
    ["sandbox_write_file", { id: sb.id, path: "f.txt" }, /content/],
    ["sandbox_write_file", { id: sb.id, path: "../../tmp/escape", content: "x" }, /\.\./],
    ["sandbox_write_file", { id: sb.id, path: "b.bin", content: "!!!not base64!!!", encoding: "base64" }, /base64/],
    ["sandbox_write_file", { id: sb.id, path: "m.txt", content: "x", mode: "rwx" }, /mode/],
    ["sandbox_write_file", { id: sb.id, path: "m.txt", content: "x", mode: 99999 }, /mode/],
    ["sandbox_destroy", {}, /id/],
    ["sandbox_destroy", { id: "no-such-sandbox" }, /no-such-sandbox/],
    ["sandbox_list", { verbose: true }, /verbose/],
  ];
  for (const [tool, args, pattern] of cases) {
    let text;
    try {
      text = await callToolError(client, tool, args);
    } catch (e) {
      throw new Error(`${tool} ${JSON.stringify(args)}: ${e.message}`);
    }
    assert.match(text, pattern, `${tool} ${JSON.stringify(args)} -> ${JSON.stringify(text)}`);
  }
  await assertAlive();

  // A 20 MiB command string: over the per-argument cap, under the message cap.
  const huge = "echo " + "x".repeat(20 * 1024 * 1024);
  const text = await callToolError(client, "sandbox_exec", { id: sb.id, command: huge });
  assert.match(text, /command/);
  assert.ok(text.length < 10_000, "the error echoes the huge argument");
  await assertAlive();

  // No sandbox was created by any of the failed sandbox_create calls.
  const { sandboxes } = await callTool(client, "sandbox_list");
  assert.deepEqual(sandboxes.map((s) => s.name), ["stdio-main"]);
});

test("exec: 8 MiB of stdin reaches the command intact, every time", async () => {
  // Bigger than guest-init's stdin queue (4 MiB high-water mark + one frame): the
  // connection has to pause and resume while the command reads.
  const data = "0123456789abcdef".repeat((8 << 20) / 16);
  for (const command of ["wc -c", "cat >/dev/null; echo done", "sleep 0.5; wc -c", "md5sum"]) {
    for (let round = 0; round < 3; round++) {
      let r;
      try {
        r = await exec({ command, stdin: data, timeout_seconds: 60 });
      } catch (e) {
        throw new Error(`${command} with 8 MiB stdin (round ${round}): ${e.message}`);
      }
      assert.equal(r.exit_code, 0, `${command}: ${JSON.stringify(r)}`);
      if (command.endsWith("wc -c")) assert.equal(r.stdout.trim(), String(data.length));
      else if (command === "md5sum") assert.equal(r.stdout.split(" ")[0], createHash("md5").update(data).digest("hex"));
      else assert.equal(r.stdout, "done\n");
    }
  }
  await assertAlive();
});

test("NUL characters in string arguments are refused, never silently cut off", async () => {
  // JSON strings may carry U+0000. A C string would end there: "echo a\0; rm -rf x" must
  // not quietly run "echo a", and "secret\0.txt" must not read "secret".
  const refused = [
    ["sandbox_exec", { id: sb.id, command: "echo a\u0000; echo b" }],
    ["sandbox_exec", { id: sb.id, argv: ["echo", "a\u0000b"] }],
    ["sandbox_exec", { id: sb.id, command: "echo $X", env: { X: "a\u0000b" } }],
    ["sandbox_exec", { id: sb.id, command: "pwd", cwd: "/tmp\u0000/etc" }],
    ["sandbox_exec", { id: `${sb.name}\u0000zzz`, command: "true" }],
    ["sandbox_read_file", { id: sb.id, path: "README.md\u0000.txt" }],
    ["sandbox_write_file", { id: sb.id, path: "nul-path\u0000.txt", content: "x" }],
    ["sandbox_create", { name: "nul\u0000name" }],
  ];
  for (const [tool, args] of refused) {
    let r;
    try {
      r = await client.callTool({ name: tool, arguments: args });
    } catch (e) {
      // A JSON-RPC invalid-params error is a refusal too.
      assert.ok(e instanceof McpError && e.code === -32602, `${tool}: ${e}`);
      continue;
    }
    assert.equal(r.isError, true, `${tool} ${JSON.stringify(args)} was accepted: ${JSON.stringify(r.structuredContent)}`);
  }
  // Data (stdin, file content) either goes through byte for byte or is refused.
  // A JSON-RPC invalid-params error counts as a refusal here too.
  const refusedAsProtocolError = (e) => {
    assert.ok(e instanceof McpError && e.code === -32602, String(e));
    return { isError: true };
  };
  const stdin = await client
    .callTool({ name: "sandbox_exec", arguments: { id: sb.id, command: "od -An -c | tr -s ' '", stdin: "a\u0000b" } })
    .catch(refusedAsProtocolError);
  if (!stdin.isError)
    assert.equal(stdin.structuredContent.stdout.trim(), "a \\0 b", `stdin "a\\0b" arrived as ${JSON.stringify(stdin.structuredContent.stdout)}`);
  const w = await client
    .callTool({ name: "sandbox_write_file", arguments: { id: sb.id, path: "nul.txt", content: "a\u0000b" } })
    .catch(refusedAsProtocolError);
  if (!w.isError) {
    assert.equal(w.structuredContent.bytes_written, 3, `content "a\\0b" written as ${w.structuredContent.bytes_written} bytes`);
    const back = await callTool(client, "sandbox_read_file", { id: sb.id, path: "nul.txt", encoding: "base64" });
    assert.equal(Buffer.from(back.content, "base64").toString("latin1"), "a\u0000b");
  }
  const { sandboxes } = await callTool(client, "sandbox_list");
  assert.deepEqual(sandboxes.map((s) => s.name), ["stdio-main"]);
  await assertAlive();
});

test("destroy: the sandbox is gone and calls on it say so", async () => {
  const other = await callTool(client, "sandbox_create", { name: "stdio-second" });
  assert.equal((await callTool(client, "sandbox_exec", { id: "stdio-second", command: "echo by name" })).stdout, "by name\n");
  const pid = sb.pid;
  const d = await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.equal(d.id, sb.id);
  assert.equal(d.name, "stdio-main");
  assert.equal(d.destroyed, true);
  for (const [tool, args] of [
    ["sandbox_exec", { id: sb.id, command: "true" }],
    ["sandbox_read_file", { id: sb.id, path: "README.md" }],
    ["sandbox_write_file", { id: sb.id, path: "x", content: "x" }],
    ["sandbox_destroy", { id: sb.id }],
    ["sandbox_exec", { id: "stdio-main", command: "true" }],
  ]) {
    const text = await callToolError(client, tool, args);
    assert.ok(text.includes(args.id), `${tool}: ${text}`);
  }
  // Its PID 1 is gone, its state directory entry too.
  await sleep(200);
  assert.equal(processRuns(pid), false, `sandbox PID 1 (${pid}) still runs after destroy`);
  const { sandboxes } = await callTool(client, "sandbox_list");
  assert.deepEqual(sandboxes.map((s) => s.id), [other.id]);
  // The name is free again.
  const again = await callTool(client, "sandbox_create", { name: "stdio-main" });
  assert.notEqual(again.id, sb.id);
  await callTool(client, "sandbox_destroy", { id: "stdio-main" });
  await callTool(client, "sandbox_destroy", { id: other.id });
  assert.deepEqual((await callTool(client, "sandbox_list")).sandboxes, []);
  // The user's repository is still untouched.
  assert.deepEqual(fileTree(repo), repoBefore);
  assert.equal(git(repo, "status", "--porcelain"), "");
});

test("big results stay within what the SDK's stdio client accepts (10 MiB per message)", async () => {
  // @modelcontextprotocol/sdk's stdio ReadBuffer drops the connection on a message over
  // 10 MiB, and the client then kills the server. A result carries its JSON twice (text
  // block and structuredContent), so default-sized reads of binary files and 1 MiB of
  // control-character output (6 bytes each as \u00XX) must not produce such a message.
  const own = await connectStdio({ stateDir });
  const big = await callTool(own, "sandbox_create", { name: "stdio-big" });
  const run = (args) => callTool(own, "sandbox_exec", { id: big.id, ...args });
  try {
    let r;
    try {
      r = await run({ command: "head -c 1048576 /dev/zero | tr '\\0' '\\1'" });
    } catch (e) {
      throw new Error(`1 MiB of \\x01 output with the default max_output_bytes: ${e.message}`);
    }
    assert.ok(r.stdout.length > 0 && /^\u0001+$/.test(r.stdout));
    assert.equal(r.truncated, r.stdout.length < 1048576);

    const bytes = randomBytes(8 << 20);
    await callTool(own, "sandbox_write_file", { id: big.id, path: "big.bin", content: bytes.toString("base64"), encoding: "base64" });
    // Read the whole file with default lengths, following `truncated`.
    const parts = [];
    let offset = 0;
    for (let i = 0; i < 64; i++) {
      let part;
      try {
        part = await callTool(own, "sandbox_read_file", { id: big.id, path: "big.bin", encoding: "base64", offset });
      } catch (e) {
        throw new Error(`sandbox_read_file of an 8 MiB file at offset ${offset}, default length: ${e.message}`);
      }
      const buf = Buffer.from(part.content, "base64");
      assert.equal(part.size, bytes.length);
      assert.equal(part.bytes_read, buf.length);
      parts.push(buf);
      offset += buf.length;
      if (!part.truncated) break;
      assert.ok(buf.length > 0, "truncated read returned no data");
    }
    assert.deepEqual(Buffer.concat(parts), bytes);
    assert.equal((await run({ command: "echo alive" })).stdout, "alive\n");
  } finally {
    await own.callTool({ name: "sandbox_destroy", arguments: { id: "stdio-big" } }).catch(() => {});
  }
});
