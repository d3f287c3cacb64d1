// Limits that hold on the jail: an allocation past memory_mib kills the process that made
// it, inside the sandbox (guest-init, its PID 1, is never the OOM killer's choice), and a
// fork bomb stops at the sandbox's pids limit until its exec's timeout ends it; warren, the
// host and the sandbox itself carry on, and the next exec works. The same on one QEMU VM,
// where memory_mib is the guest's RAM and the guest kernel's OOM killer does the choosing.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  connectStdio,
  skip,
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

const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
test("qemu: an allocation past the guest's RAM and a fork bomb stay inside the VM; the next exec works", async () => {
  if (!existsSync(join(guestDir, "vmlinuz")) || !existsSync("/usr/lib/qemu/virtiofsd")) skip("no guest kernel or virtiofsd");
  const vmState = tempStateDir();
  sweepSandboxesAtEnd(vmState);
  const vm = await connectStdio({ stateDir: vmState, args: ["--backend", "qemu"], env: { WARREN_QEMU_ACCEL: "tcg" } });
  const box = await callTool(vm, "sandbox_create", { name: "vm-limits", memory_mib: 256 }, { timeout: 180_000 });
  const run = (command, timeout_seconds = 120) =>
    callTool(vm, "sandbox_exec", { id: box.id, command, timeout_seconds }, { timeout: 200_000 });
  const oom = await run("head -c 512M /dev/zero | tail -n 1 > /dev/null; echo \"status $?\"");
  assert.match(oom.stdout, /status 137/, `${oom.stdout}${oom.stderr}`);
  assert.equal((await run("echo alive")).stdout, "alive\n");
  const bomb = await run("bomb() { bomb | bomb & }; bomb; sleep 600", 10);
  assert.equal(bomb.timed_out, true, JSON.stringify(bomb).slice(0, 400));
  const started = Date.now();
  let again;
  do again = await run("echo alive", 30);
  while (again.exit_code !== 0 && Date.now() - started < 120_000);
  console.log(`VM: first working exec ${Date.now() - started} ms after the bomb's exec returned`);
  assert.equal(again.stdout, "alive\n", again.stderr);
  assert.equal((await callTool(vm, "sandbox_list")).sandboxes.find((s) => s.id === box.id).state, "running");
  await callTool(vm, "sandbox_destroy", { id: box.id });
  await vm.close();
}, { timeoutMs: 600_000 });
