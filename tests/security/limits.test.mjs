// Limits that hold on the jail: an allocation past memory_mib kills the process that made
// it, inside the sandbox (guest-init, its PID 1, is never the OOM killer's choice), and a
// fork bomb stops at the sandbox's pids limit until its exec's timeout ends it; warren, the
// host and the sandbox itself carry on, and the next exec works.
import assert from "node:assert/strict";

import {
  callTool,
  connectStdio,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "../integration/lib/harness.mjs";

skipUnlessRoot();
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const client = await connectStdio({ stateDir });
const sb = await callTool(client, "sandbox_create", { name: "limits", memory_mib: 128 });
const exec = (command, timeout_seconds = 60) =>
  callTool(client, "sandbox_exec", { id: sb.id, command, timeout_seconds }, { timeout: 120_000 });

test("an allocation past memory_mib kills that process, not the sandbox or warren", async () => {
  // tail holds a 512 MiB line (no newline in it) in memory, in a sandbox of 128 MiB.
  const r = await exec("head -c 512M /dev/zero | tail -n 1 > /dev/null; echo \"status $?\"");
  assert.match(r.stdout, /status 137/, `${r.stdout}${r.stderr}`); // SIGKILL from the OOM killer
  assert.equal((await exec("echo alive")).stdout, "alive\n");
  const list = await callTool(client, "sandbox_list");
  const mine = list.sandboxes.find((s) => s.id === sb.id);
  assert.equal(mine.state, "running");
  assert.ok(mine.memory.usage_bytes <= 128 * 1024 * 1024, `${mine.memory.usage_bytes} bytes held`);
});

test("a fork bomb stays inside: the pids limit stops it, its exec's timeout ends it, the next exec works", async () => {
  const bombed = await callTool(client, "sandbox_create", { name: "bombed" });
  const run = (command, timeout_seconds) =>
    callTool(client, "sandbox_exec", { id: bombed.id, command, timeout_seconds }, { timeout: 120_000 });
  const r = await run("bomb() { bomb | bomb & }; bomb; sleep 600", 5);
  assert.equal(r.timed_out, true, JSON.stringify(r).slice(0, 400));
  // The timeout killed the exec's process group, bomb included, until it was empty.
  const started = Date.now();
  let again;
  do again = await run("echo alive", 10);
  while (again.exit_code !== 0 && Date.now() - started < 60_000);
  console.log(`first working exec ${Date.now() - started} ms after the bomb's exec returned`);
  assert.equal(again.stdout, "alive\n", again.stderr);
  const list = await callTool(client, "sandbox_list");
  assert.equal(list.sandboxes.find((s) => s.id === bombed.id).state, "running");
  assert.equal((await exec("echo neighbour")).stdout, "neighbour\n", "another sandbox was not touched");
  await callTool(client, "sandbox_destroy", { id: bombed.id });
}, { timeoutMs: 200_000 });
