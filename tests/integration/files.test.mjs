// The file, change and metrics tools a UI and an agent share: sandbox_list_dir,
// sandbox_stat, sandbox_make_dir, sandbox_move, sandbox_remove (guest-init's directory
// requests), sandbox_diff (the workspace against its start commit, libgit2) and
// sandbox_metrics (the server's samples), on the jail; then list_dir and remove through a
// QEMU VM's agent (one boot) where QEMU is installed.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  callToolError,
  connectStdio,
  git,
  makeGitRepo,
  repoRoot,
  skipUnlessRoot,
  sweepSandboxes,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const repo = makeGitRepo({
  "README.md": "hello\n",
  "src/main.c": "int main(void) { return 0; }\n",
  "docs/old.md": "a document that moves\n".repeat(20),
  "gone.txt": "to be deleted\n",
});
const base = git(repo, "rev-parse", "HEAD");

// A short sampling interval (a test-only setting) so that metrics come within seconds.
const client = await connectStdio({ stateDir, env: { WARREN_METRICS_INTERVAL_MS: "500" } });
const sb = await callTool(client, "sandbox_create", { name: "files", repo });
const plain = await callTool(client, "sandbox_create", { name: "plain" });
const sh = (id, command) => callTool(client, "sandbox_exec", { id, command });

test("list_dir: a tree with depth, sorted depth-first, symlinks not followed", async () => {
  await sh(plain.id, "mkdir -p a/b/c && echo x > a/b/c/deep.txt && echo hi > a/f.txt && ln -s /etc a/link && printf 1234 > top.txt");
  const one = await callTool(client, "sandbox_list_dir", { id: plain.id });
  assert.equal(one.path, ".");
  assert.deepEqual(one.entries.map((e) => e.path), ["a", "top.txt"]);
  assert.equal(one.truncated, false);
  const top = one.entries[1];
  assert.equal(top.type, "file");
  assert.equal(top.size, 4);
  assert.equal(top.mode, "0644");
  assert.match(top.mtime, /^\d{4}-\d\d-\d\dT/);
  const deep = await callTool(client, "sandbox_list_dir", { id: plain.id, path: "a", depth: 3 });
  assert.deepEqual(deep.entries.map((e) => `${e.type}:${e.path}`),
    ["dir:a/b", "dir:a/b/c", "file:a/b/c/deep.txt", "file:a/f.txt", "symlink:a/link"]);
  assert.equal(deep.entries[4].symlink_target, "/etc");
  assert.equal(deep.entries[4].name, "link");
  const abs = await callTool(client, "sandbox_list_dir", { id: plain.id, path: "/workspace/a", depth: 1 });
  assert.deepEqual(abs.entries.map((e) => e.path), ["/workspace/a/b", "/workspace/a/f.txt", "/workspace/a/link"]);
  const cut = await callTool(client, "sandbox_list_dir", { id: plain.id, depth: 5, max_entries: 2 });
  assert.equal(cut.entries.length, 2);
  assert.equal(cut.truncated, true);
  assert.match(await callToolError(client, "sandbox_list_dir", { id: plain.id, depth: 6 }), /depth/);
  assert.match(await callToolError(client, "sandbox_list_dir", { id: plain.id, path: "missing" }), /no such file/i);
  assert.match(await callToolError(client, "sandbox_list_dir", { id: plain.id, path: "top.txt" }), /not a directory/i);
  const st = await callTool(client, "sandbox_stat", { id: plain.id, path: "a" });
  assert.equal(st.type, "dir");
});

test("make_dir, move and remove, and what they refuse", async () => {
  await callTool(client, "sandbox_make_dir", { id: plain.id, path: "m/n/o", parents: true });
  await callTool(client, "sandbox_make_dir", { id: plain.id, path: "m/n/o", parents: true });
  assert.match(await callToolError(client, "sandbox_make_dir", { id: plain.id, path: "m/n/o" }), /exists/i);
  assert.match(await callToolError(client, "sandbox_make_dir", { id: plain.id, path: "x/y" }), /no such file/i);
  const moved = await callTool(client, "sandbox_move", { id: plain.id, from: "m", to: "moved" });
  assert.deepEqual(moved, { from: "m", to: "moved" });
  assert.equal((await callTool(client, "sandbox_stat", { id: plain.id, path: "moved/n/o" })).type, "dir");
  assert.match(await callToolError(client, "sandbox_move", { id: plain.id, from: "top.txt", to: "a/f.txt" }), /exists/);
  await callTool(client, "sandbox_move", { id: plain.id, from: "top.txt", to: "a/f.txt", overwrite: true });
  assert.equal((await callTool(client, "sandbox_read_file", { id: plain.id, path: "a/f.txt" })).content, "1234");
  assert.match(await callToolError(client, "sandbox_move", { id: plain.id, from: "../etc", to: "x" }), /\.\./);
  assert.match(await callToolError(client, "sandbox_remove", { id: plain.id, path: "moved" }), /recursive/);
  await callTool(client, "sandbox_remove", { id: plain.id, path: "moved", recursive: true });
  assert.match(await callToolError(client, "sandbox_stat", { id: plain.id, path: "moved" }), /no such file/i);
  await callTool(client, "sandbox_remove", { id: plain.id, path: "a/link" }); // the link, not /etc
  assert.equal((await callTool(client, "sandbox_stat", { id: plain.id, path: "/etc/passwd" })).type, "file");
  for (const path of ["/workspace", "/", ".", "/workspace/", "/workspace/."])
    assert.match(await callToolError(client, "sandbox_remove", { id: plain.id, path, recursive: true }), /refusing/, path);
  assert.match(await callToolError(client, "sandbox_remove", { id: plain.id, path: "a/../..", recursive: true }), /\.\./);
  assert.match(await callToolError(client, "sandbox_remove", { id: plain.id, path: "nothing" }), /no such file/i);
  assert.equal((await callTool(client, "sandbox_stat", { id: plain.id, path: "/workspace" })).type, "dir");
});

const byPath = (d) => Object.fromEntries(d.files.map((f) => [f.path, f]));

test("diff: edits, creates, deletes, a rename and a binary file against the start commit", async () => {
  await sh(sb.id, [
    "set -e",
    "printf 'hello\\nworld\\n' > README.md",
    "echo new > added.txt",
    "rm gone.txt",
    "mkdir -p notes && mv docs/old.md notes/new.md",
    "printf '\\000\\001\\002binary' > blob.bin",
  ].join("\n"));
  const d = await callTool(client, "sandbox_diff", { id: sb.id });
  assert.equal(d.base, base);
  assert.equal(d.truncated, false);
  const f = byPath(d);
  assert.deepEqual(Object.keys(f).sort(), ["README.md", "added.txt", "blob.bin", "gone.txt", "notes/new.md"]);
  assert.equal(f["README.md"].status, "modified");
  assert.equal(f["README.md"].insertions, 1);
  assert.equal(f["README.md"].deletions, 0);
  assert.match(f["README.md"].patch, /^diff --git a\/README.md b\/README.md\n[^]*\n\+world\n$/);
  assert.equal(f["added.txt"].status, "added");
  assert.equal(f["gone.txt"].status, "deleted");
  assert.equal(f["gone.txt"].deletions, 1);
  assert.equal(f["notes/new.md"].status, "renamed");
  assert.equal(f["notes/new.md"].old_path, "docs/old.md");
  assert.equal(f["blob.bin"].binary, true);
  assert.match(f["blob.bin"].patch, /Binary files/);
  const only = await callTool(client, "sandbox_diff", { id: sb.id, paths: ["README.md"], context_lines: 0 });
  assert.deepEqual(only.files.map((x) => x.path), ["README.md"]);
  const small = await callTool(client, "sandbox_diff", { id: sb.id, max_bytes: 10 });
  assert.equal(small.truncated, true);
  assert.ok(small.files.every((x) => x.patch.length <= 10));
  // Nothing was written to the repository: no new objects, no new refs.
  assert.equal(git(repo, "for-each-ref", "--format=%(refname)"), "refs/heads/main");
});

test("diff: the agent's own commit inside the sandbox, then more work on top", async () => {
  await sh(sb.id, "git add -A && git commit -qm 'agent work' && echo more >> added.txt");
  const d = await callTool(client, "sandbox_diff", { id: sb.id });
  const f = byPath(d);
  assert.equal(f["added.txt"].status, "added");
  assert.equal(f["added.txt"].insertions, 2);
  assert.equal(f["README.md"].status, "modified");
  assert.equal(d.base, base);
});

test("diff: a sandbox without a repository is refused clearly", async () => {
  assert.match(await callToolError(client, "sandbox_diff", { id: plain.id }), /not created from a git repository/);
});

test("metrics: samples of memory, cpu and disk", async () => {
  await sh(plain.id, "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done");
  await new Promise((r) => setTimeout(r, 1500));
  const m = await callTool(client, "sandbox_metrics", { id: plain.id, since_seconds: 600 });
  assert.equal(m.interval_seconds >= 0, true);
  assert.ok(m.samples.length >= 2, `samples: ${JSON.stringify(m)}`);
  const last = m.samples.at(-1);
  assert.ok(last.memory_usage_bytes > 0);
  assert.ok(last.cpu_seconds > 0);
  assert.ok(last.disk_used_bytes > 0);
  assert.match(last.at, /^\d{4}-\d\d-\d\dT/);
  await callTool(client, "sandbox_pause", { id: plain.id });
  await new Promise((r) => setTimeout(r, 600)); // a tick under way at the pause may still land
  const before = await callTool(client, "sandbox_metrics", { id: plain.id, since_seconds: 600 });
  await new Promise((r) => setTimeout(r, 1500)); // three sampling intervals
  const after = await callTool(client, "sandbox_metrics", { id: plain.id, since_seconds: 600 });
  assert.equal(after.samples.length, before.samples.length, "a sandbox that is not running has no new samples");
  await callTool(client, "sandbox_resume", { id: plain.id });
  assert.match(await callToolError(client, "sandbox_metrics", { id: "nope" }), /nope/);
});

const guestDir = process.env.WARREN_GUEST_DIR ?? join(process.env.WARREN_BUILD_DIR ?? join(repoRoot, "build"), "guest");
const qemuThere = existsSync("/usr/bin/qemu-system-x86_64") && existsSync("/usr/lib/qemu/virtiofsd") &&
  existsSync(join(guestDir, "vmlinuz"));

test("qemu: list_dir and remove through the VM's agent", async () => {
  if (!qemuThere) return console.log("# skipped: no qemu-system-x86_64, virtiofsd or guest kernel");
  await sweepSandboxes(stateDir);
  await client.close();
  const vmClient = await connectStdio({
    stateDir,
    args: ["--backend", "qemu"],
    env: { WARREN_GUEST_DIR: guestDir, WARREN_QEMU_ACCEL: process.env.WARREN_QEMU_ACCEL ?? "tcg" },
  });
  try {
    const vm = await callTool(vmClient, "sandbox_create", { name: "vmfiles", ttl_seconds: 900 }, { timeout: 300_000 });
    assert.equal(vm.backend, "qemu");
    await callTool(vmClient, "sandbox_make_dir", { id: vm.id, path: "d/e", parents: true });
    await callTool(vmClient, "sandbox_write_file", { id: vm.id, path: "d/e/f.txt", content: "vm\n" });
    const l = await callTool(vmClient, "sandbox_list_dir", { id: vm.id, depth: 3 });
    assert.deepEqual(l.entries.map((e) => `${e.type}:${e.path}`), ["dir:d", "dir:d/e", "file:d/e/f.txt"]);
    assert.match(await callToolError(vmClient, "sandbox_remove", { id: vm.id, path: "/workspace" }), /refusing/);
    await callTool(vmClient, "sandbox_remove", { id: vm.id, path: "d", recursive: true });
    assert.deepEqual((await callTool(vmClient, "sandbox_list_dir", { id: vm.id })).entries, []);
    await callTool(vmClient, "sandbox_destroy", { id: vm.id });
  } finally {
    await vmClient.close();
  }
}, { timeoutMs: 600_000 });
