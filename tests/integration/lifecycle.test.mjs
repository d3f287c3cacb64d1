// Pause, resume, and booting a stopped sandbox again from its files.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  callTool,
  callToolError,
  connectStdio,
  makeGitRepo,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const repo = makeGitRepo({ "README.md": "hello\n" });
const client = await connectStdio({ stateDir });
const sb = await callTool(client, "sandbox_create", { name: "life", repo });
const upper = join(stateDir, "sandboxes", sb.id, "disk", "workspace", "upper");
const tick = () => readFileSync(join(upper, "tick"), "utf8");
const state = async () =>
  (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id).state;

test("a paused sandbox stops running and keeps its memory; a call resumes it", async () => {
  // A counter in the background, written where the host can read it (the upper layer).
  await callTool(client, "sandbox_exec", {
    id: sb.id,
    command: "(i=0; while :; do i=$((i+1)); echo $i > /workspace/tick; sleep 0.05; done) >/dev/null 2>&1 &",
  });
  await sleep(300);
  const paused = await callTool(client, "sandbox_pause", { id: sb.id });
  assert.equal(paused.state, "paused");
  assert.equal(await state(), "paused");
  const frozenAt = tick();
  await sleep(500);
  assert.equal(tick(), frozenAt, "the counter moved while paused");
  // Pausing again is fine; exec on a paused sandbox resumes it first.
  assert.equal((await callTool(client, "sandbox_pause", { id: sb.id })).state, "paused");
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "cat /workspace/tick" });
  assert.equal(r.exit_code, 0);
  assert.equal(await state(), "running");
  await sleep(300);
  assert.notEqual(tick(), frozenAt, "the counter did not move after resuming");
});

test("explicit resume thaws; destroy works on a paused sandbox", async () => {
  const other = await callTool(client, "sandbox_create", { name: "life-2" });
  await callTool(client, "sandbox_pause", { id: other.id });
  assert.equal((await callTool(client, "sandbox_resume", { id: other.id })).state, "running");
  assert.equal((await callTool(client, "sandbox_resume", { id: other.id })).state, "running");
  await callTool(client, "sandbox_pause", { id: other.id });
  const d = await callTool(client, "sandbox_destroy", { id: other.id });
  assert.equal(d.destroyed, true);
});

// Counts processes in the sandbox whose command line holds marker (a /proc walk: no pgrep needed).
const countProcesses = async (marker) => {
  const r = await callTool(client, "sandbox_exec", {
    id: sb.id,
    command: `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '${marker}' || true`,
  });
  return Number(r.stdout.trim());
};

test("restart boots the same sandbox again: files kept, processes gone, running", async () => {
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "before-restart.txt", content: "kept\n" });
  await callTool(client, "sandbox_exec", { id: sb.id, command: "echo root-kept > /root/restart-note" });
  await callTool(client, "sandbox_exec", { id: sb.id, command: "(setsid sleep 6543 >/dev/null 2>&1 &); echo ok" });
  assert.equal(await countProcesses("[s]leep 6543"), 1, "the background process did not start");
  const before = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
  const restarted = await callTool(client, "sandbox_restart", { id: sb.name });
  assert.equal(restarted.id, sb.id);
  assert.equal(restarted.name, sb.name);
  assert.equal(restarted.state, "running");
  assert.equal(restarted.commit, before.commit);
  assert.notEqual(restarted.pid, before.pid, "the machine was not started again");
  assert.equal(await state(), "running");
  assert.equal(await countProcesses("[s]leep 6543"), 0, "a process survived the restart");
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "cat before-restart.txt /root/restart-note README.md" });
  assert.equal(r.stdout, "kept\nroot-kept\nhello\n");
  // A paused sandbox restarts too, and comes back running.
  await callTool(client, "sandbox_pause", { id: sb.id });
  assert.equal((await callTool(client, "sandbox_restart", { id: sb.id })).state, "running");
  assert.equal((await callTool(client, "sandbox_exec", { id: sb.id, command: "cat before-restart.txt" })).stdout, "kept\n");
  const { events } = await callTool(client, "sandbox_events", { id: sb.id });
  assert.ok(events.filter((e) => e.kind === "restarted").length >= 2, JSON.stringify(events.map((e) => e.kind)));
  assert.match(await callToolError(client, "sandbox_restart", { id: "no-such-sandbox" }), /no-such-sandbox/);
  assert.match(await callToolError(client, "sandbox_restart", { id: sb.id, force: true }), /force/);
});

test("a stopped sandbox boots again with its files", async () => {
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "kept.txt", content: "still here\n" });
  await callTool(client, "sandbox_exec", { id: sb.id, command: "echo root-change > /root/note" });
  const { pid } = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
  process.kill(pid, "SIGKILL");
  for (let i = 0; i < 50 && (await state()) !== "stopped"; i++) await sleep(100);
  assert.equal(await state(), "stopped");
  assert.match(await callToolError(client, "sandbox_exec", { id: sb.id, command: "true" }), /stopped/);
  assert.match(await callToolError(client, "sandbox_pause", { id: sb.id }), /only a running sandbox/);
  const resumed = await callTool(client, "sandbox_resume", { id: sb.id });
  assert.equal(resumed.state, "running");
  assert.notEqual(resumed.pid, pid);
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "cat kept.txt /root/note README.md" });
  assert.equal(r.stdout, "still here\nroot-change\nhello\n");
  await callTool(client, "sandbox_destroy", { id: sb.id });
});

test("the idle policy pauses an idle sandbox, then stops it with its files; list shows when", async () => {
  const dir = tempStateDir();
  sweepSandboxesAtEnd(dir);
  const idle = await connectStdio({
    stateDir: dir,
    args: ["--idle-pause-seconds=2", "--idle-stop-seconds=8"],
  });
  const s = await callTool(idle, "sandbox_create", { name: "idler" });
  await callTool(idle, "sandbox_write_file", { id: s.id, path: "keep.txt", content: "kept\n" });
  const listed = async () => (await callTool(idle, "sandbox_list")).sandboxes[0];
  const first = await listed();
  assert.ok(first.idle_policy.pause_at && first.idle_policy.stop_at, JSON.stringify(first));
  let state;
  for (let i = 0; i < 80 && (state = (await listed()).state) === "running"; i++) await sleep(100);
  assert.equal(state, "paused");
  for (let i = 0; i < 150 && (state = (await listed()).state) !== "stopped"; i++) await sleep(100);
  assert.equal(state, "stopped");
  assert.match((await listed()).error, /idle/);
  assert.equal((await callTool(idle, "sandbox_resume", { id: s.id })).state, "running");
  const r = await callTool(idle, "sandbox_exec", { id: s.id, command: "cat keep.txt" });
  assert.equal(r.stdout, "kept\n");
  await callTool(idle, "sandbox_destroy", { id: s.id });
}, { timeoutMs: 60_000 });
