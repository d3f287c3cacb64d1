// Snapshots: save a point, change files, restore it; forks do not see each other's writes;
// a snapshot in use cannot be deleted; git commits see through the layers.
import assert from "node:assert/strict";

import {
  callTool,
  callToolError,
  connectStdio,
  git,
  makeGitRepo,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const repo = makeGitRepo({ "README.md": "hello\n", "src/a.txt": "a0\n", "src/gone.txt": "bye\n" });
const client = await connectStdio({ stateDir });
const sh = async (id, command) => {
  const r = await callTool(client, "sandbox_exec", { id, command });
  assert.equal(r.exit_code, 0, r.stderr);
  return r.stdout;
};
const sb = await callTool(client, "sandbox_create", { name: "snap-src", repo });

test("snapshot -> change files -> restore: the restored sandbox has the old contents", async () => {
  await sh(sb.id, "echo a1 > src/a.txt && rm src/gone.txt && echo new > src/new.txt && echo rootfile > /root/r.txt");
  const s1 = await callTool(client, "sandbox_snapshot", { id: sb.id, name: "point-1" });
  assert.equal(s1.name, "point-1");
  assert.equal(s1.sandbox_id, sb.id);
  assert.equal(s1.memory, false);
  assert.equal(s1.layers, 1);
  // The sandbox goes on: its files are there, and new changes land above the snapshot.
  assert.equal(await sh(sb.id, "cat src/a.txt src/new.txt /root/r.txt; ls src"), "a1\nnew\nrootfile\na.txt\nnew.txt\n");
  await sh(sb.id, "echo a2 > src/a.txt && rm src/new.txt && echo later > later.txt");
  const back = await callTool(client, "sandbox_restore", { snapshot: "point-1", name: "restored" });
  assert.equal(back.state, "running");
  assert.equal(await sh(back.id, "cat src/a.txt src/new.txt /root/r.txt; ls src; test ! -e later.txt && echo no-later"),
    "a1\nnew\nrootfile\na.txt\nnew.txt\nno-later\n");
  assert.equal(await sh(sb.id, "cat src/a.txt; ls src"), "a2\na.txt\n");
});

test("forks do not see each other's writes", async () => {
  const f1 = await callTool(client, "sandbox_restore", { snapshot: "point-1", name: "fork-1" });
  const f2 = await callTool(client, "sandbox_restore", { snapshot: "point-1", name: "fork-2" });
  await sh(f1.id, "echo one > fork.txt");
  await sh(f2.id, "echo two > fork.txt");
  assert.equal(await sh(f1.id, "cat fork.txt"), "one\n");
  assert.equal(await sh(f2.id, "cat fork.txt"), "two\n");
  assert.equal(await sh("restored", "test -e fork.txt && echo yes || echo no"), "no\n");
});

test("a second snapshot stacks on the first; list shows who uses what", async () => {
  const s2 = await callTool(client, "sandbox_snapshot", { id: sb.id, name: "point-2" });
  assert.equal(s2.layers, 2);
  const { snapshots } = await callTool(client, "snapshot_list", { sandbox: sb.id });
  assert.deepEqual(snapshots.map((s) => s.name), ["point-1", "point-2"]);
  const p1 = snapshots.find((s) => s.name === "point-1");
  assert.ok(p1.used_by.includes("sandbox 'snap-src'"), JSON.stringify(p1));
  assert.ok(p1.used_by.includes("sandbox 'fork-1'"), JSON.stringify(p1));
  assert.ok(p1.used_by.includes("snapshot 'point-2'"), JSON.stringify(p1));
  assert.equal((await callTool(client, "snapshot_list")).snapshots.length, 2);
});

test("deleting a snapshot in use is refused, naming the users; unused ones go", async () => {
  const refused = await callToolError(client, "snapshot_delete", { snapshot: "point-1" });
  assert.match(refused, /in use by .*sandbox 'snap-src'/);
  assert.match(refused, /fork-1/);
  const spare = await callTool(client, "sandbox_snapshot", { id: "fork-2", name: "spare" });
  const d0 = await callToolError(client, "snapshot_delete", { snapshot: "spare" });
  assert.match(d0, /sandbox 'fork-2'/);
  await callTool(client, "sandbox_destroy", { id: "fork-2" });
  const d = await callTool(client, "snapshot_delete", { snapshot: spare.snapshot_id });
  assert.equal(d.deleted, true);
  assert.match(await callToolError(client, "snapshot_delete", { snapshot: "spare" }), /no snapshot/);
});

test("git commits see every layer; bad inputs are clear errors", async () => {
  const c = await callTool(client, "sandbox_git_commit", { id: sb.id, message: "through the layers" });
  const names = git(repo, "diff", "--name-status", git(repo, "rev-parse", "HEAD"), c.commit).split("\n").sort();
  assert.deepEqual(names, ["A\tlater.txt", "D\tsrc/gone.txt", "M\tsrc/a.txt"]);
  assert.match(await callToolError(client, "sandbox_snapshot", { id: sb.id, memory: true }), /memory snapshots are not available: the jail backend/);
  assert.match(await callToolError(client, "sandbox_snapshot", { id: sb.id, name: "point-1" }), /already exists/);
  assert.match(await callToolError(client, "sandbox_restore", { snapshot: "nope" }), /no snapshot 'nope'/);
  assert.match(await callToolError(client, "sandbox_snapshot", { id: "nope" }), /no sandbox 'nope'/);
});

test("a stopped sandbox can be snapshotted, and snapshots outlive their sandbox", async () => {
  const { pid } = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.name === "fork-1");
  process.kill(pid, "SIGKILL");
  await new Promise((r) => setTimeout(r, 300));
  const s = await callTool(client, "sandbox_snapshot", { id: "fork-1", name: "from-stopped" });
  await callTool(client, "sandbox_destroy", { id: "fork-1" });
  const again = await callTool(client, "sandbox_restore", { snapshot: s.snapshot_id });
  assert.equal(await sh(again.id, "cat fork.txt"), "one\n");
  // The family tree reaches through the destroyed sandbox: its snapshot is built on point-1,
  // which was taken of snap-src, the first ancestor.
  const tree = await callTool(client, "snapshot_list", { sandbox: again.id, tree: true });
  const snap = (name) => tree.snapshots.find((x) => x.name === name);
  assert.equal(tree.sandboxes.find((b) => b.id === again.id).from_snapshot_id, s.snapshot_id);
  assert.equal(snap("from-stopped").parent_snapshot_id, snap("point-1").snapshot_id);
  assert.equal(snap("point-1").sandbox_id, sb.id);
  assert.equal(snap("point-1").parent_snapshot_id, null);
  assert.ok(tree.sandboxes.some((b) => b.id === sb.id && b.from_snapshot_id === null));
  assert.ok(!tree.sandboxes.some((b) => b.name === "fork-1"), "a destroyed sandbox is listed");
  assert.ok(tree.snapshots.every((x) => Number.isInteger(x.size_bytes) && x.size_bytes > 0));
});
