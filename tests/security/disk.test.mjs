// A sandbox's disk holds: with disk_mib 64, dd in / and in /workspace stops with ENOSPC
// near 64 MiB, the host's free space moves by about that much and no more (a sparse image),
// the next exec works, deleting the file frees the space again (inside, and on the host:
// discard punches the freed blocks out of the image). A snapshot keeps what was written as
// a read-only layer: a fork starts with its full disk, and the snapshot outlives the
// sandbox. Destroying and deleting release every mount and loop device. One QEMU VM (when
// it can run here) hits the same cap through virtiofs.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statfsSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  callToolError,
  connectStdio,
  mountedBelow,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
} from "../integration/lib/harness.mjs";

skipUnlessRoot("disks are loop devices: root only");
const MiB = 1024 * 1024;
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const client = await connectStdio({ stateDir });
const hostFree = () => {
  const s = statfsSync(stateDir);
  return s.bavail * s.bsize;
};
const run = (id, command, timeout_seconds = 120) =>
  callTool(client, "sandbox_exec", { id, command, timeout_seconds }, { timeout: 200_000 });
const listed = async (id) => (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === id);
// Writes MiB blocks to path until the disk is full; prints dd's verdict and what it wrote.
const fill = (path) =>
  `dd if=/dev/zero of=${path} bs=1M count=1000 conv=fsync 2>&1; echo "status $?"; ` +
  `echo "wrote $(stat -c %s ${path})"`;
const wrote = (r) => Number(/wrote (\d+)/.exec(r.stdout)?.[1] ?? -1);
// Loop devices whose image lies in the state directory.
const loopsOf = (dir) =>
  readdirSync("/sys/block")
    .filter((d) => d.startsWith("loop"))
    .map((d) => join("/sys/block", d, "loop/backing_file"))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, "utf8").trim())
    .filter((f) => f.startsWith(dir + "/"));

const sb = await callTool(client, "sandbox_create", { name: "disk", disk_mib: 64 });

test("disk_mib shows in the create result and in sandbox_list; bad sizes are refused", async () => {
  assert.equal(sb.disk_mib, 64);
  assert.ok(sb.disk_used_bytes >= 0 && sb.disk_used_bytes < 4 * MiB, `${sb.disk_used_bytes}`);
  assert.equal((await listed(sb.id)).disk_mib, 64);
  const plain = await callTool(client, "sandbox_create", { name: "disk-default" });
  assert.equal(plain.disk_mib, 10240);
  await callTool(client, "sandbox_destroy", { id: plain.id });
  assert.match(await callToolError(client, "sandbox_create", { disk_mib: 16 }), /disk_mib.*64/);
  assert.match(
    await callToolError(client, "sandbox_create", { disk_mib: 200000 }),
    /disk_mib 200000 is above this server's cap of 102400 MiB \(warren --max-disk-mib\)/,
  );
});

test("filling / stops with ENOSPC at disk_mib; the host pays about that much; the next exec works", async () => {
  const before = hostFree();
  const started = Date.now();
  const r = await run(sb.id, fill("/root/fill"));
  console.log(`dd to ENOSPC in / took ${Date.now() - started} ms, wrote ${wrote(r) / MiB} MiB`);
  assert.match(r.stdout, /No space left on device/, r.stdout);
  assert.ok(wrote(r) > 48 * MiB && wrote(r) <= 64 * MiB, r.stdout);
  const used = before - hostFree();
  console.log(`host free space moved by ${(used / MiB).toFixed(1)} MiB`);
  assert.ok(used < 80 * MiB, `the host lost ${used / MiB} MiB`);
  assert.equal((await run(sb.id, "echo alive")).stdout, "alive\n");
  const row = await listed(sb.id);
  assert.ok(row.disk_used_bytes > 48 * MiB && row.disk_used_bytes <= 64 * MiB, `${row.disk_used_bytes}`);
  // /workspace is on the same disk: full too.
  const ws = await run(sb.id, "dd if=/dev/zero of=/workspace/more bs=1M count=2 2>&1; rm -f /workspace/more");
  assert.match(ws.stdout, /No space left on device/, ws.stdout);
});

test("deleting the file frees the space, inside and on the host; /workspace fills to the cap too", async () => {
  const full = hostFree();
  assert.match((await run(sb.id, "rm /root/fill && sync && echo gone")).stdout, /gone/);
  await waitFor("the image's freed blocks back on the host", () => hostFree() - full > 40 * MiB, 30_000);
  const r = await run(sb.id, fill("/workspace/fill"));
  assert.match(r.stdout, /No space left on device/, r.stdout);
  assert.ok(wrote(r) > 48 * MiB && wrote(r) <= 64 * MiB, r.stdout);
  assert.match((await run(sb.id, "rm /workspace/fill && echo small > /workspace/keep && cat /workspace/keep")).stdout, /small/);
});

test("a snapshot is a read-only layer: the fork starts with its full disk; the snapshot outlives its sandbox", async () => {
  await run(sb.id, "head -c 40M /dev/urandom > /workspace/forty && sync");
  const snap = await callTool(client, "sandbox_snapshot", { id: sb.id, name: "disk-snap" }, { timeout: 120_000 });
  const fork = await callTool(client, "sandbox_restore", { snapshot: snap.name, name: "disk-fork" }, { timeout: 120_000 });
  assert.equal(fork.disk_mib, 64);
  assert.equal((await run(fork.id, "stat -c %s /workspace/forty")).stdout, `${40 * MiB}\n`);
  const r = await run(fork.id, fill("/workspace/fill"));
  assert.ok(wrote(r) > 48 * MiB, `the fork wrote only ${wrote(r) / MiB} MiB: ${r.stdout}`);
  // The sandbox itself goes on with a fresh disk too.
  const again = await run(sb.id, fill("/root/again"));
  assert.ok(wrote(again) > 48 * MiB, again.stdout);
  await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.equal((await run(fork.id, "head -c 4 /workspace/keep")).stdout, "smal");
  await callTool(client, "sandbox_destroy", { id: fork.id });
  await callTool(client, "snapshot_delete", { snapshot: snap.name });
  assert.equal(mountedBelow(join(stateDir, "sandboxes")), false, "a sandbox disk stayed mounted");
  assert.equal(mountedBelow(join(stateDir, "layers", "snap")), false, "a snapshot disk stayed mounted");
  await waitFor("no loop device on the state directory", () => loopsOf(stateDir).length === 0, 10_000);
}, { timeoutMs: 400_000 });

// One VM (TCG here: a boot costs tens of seconds): the guest writes through virtiofs into
// uppers on the disk, and gets ENOSPC at the cap too.
const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
const onPath = (bin) => (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => existsSync(join(d, bin)));
const vmWhy = !onPath("qemu-system-x86_64")
  ? "qemu-system-x86_64 is not installed"
  : !existsSync("/usr/lib/qemu/virtiofsd")
    ? "/usr/lib/qemu/virtiofsd is not installed"
    : !existsSync(join(guestDir, "vmlinuz"))
      ? `no guest kernel in ${guestDir}`
      : null;
test("qemu: a VM's writes stop with ENOSPC at disk_mib", async () => {
  if (vmWhy) return console.log(`skipped: ${vmWhy}`);
  const vmState = tempStateDir();
  sweepSandboxesAtEnd(vmState);
  const vm = await connectStdio({ stateDir: vmState, args: ["--backend", "qemu"] });
  const created = Date.now();
  const sbv = await callTool(vm, "sandbox_create", { name: "disk-vm", disk_mib: 64 }, { timeout: 240_000 });
  console.log(`VM booted in ${Date.now() - created} ms`);
  assert.equal(sbv.disk_mib, 64);
  const started = Date.now();
  const r = await callTool(vm, "sandbox_exec", { id: sbv.id, command: fill("/workspace/fill"), timeout_seconds: 240 }, { timeout: 300_000 });
  console.log(`VM dd to ENOSPC took ${Date.now() - started} ms, wrote ${wrote(r) / MiB} MiB`);
  assert.match(r.stdout, /No space left on device/, r.stdout);
  assert.ok(wrote(r) > 48 * MiB && wrote(r) <= 64 * MiB, r.stdout);
  await callTool(vm, "sandbox_destroy", { id: sbv.id }, { timeout: 60_000 });
  await waitFor("no loop device on the VM's state directory", () => loopsOf(vmState).length === 0, 10_000);
}, { timeoutMs: 600_000 });
