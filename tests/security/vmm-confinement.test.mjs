// The confined VMM (vmm/backends/confine.h), seen from the host with one real QEMU VM:
// QEMU runs as an unprivileged uid of its own with no capabilities and no_new_privs, in its
// own network, PID, mount, IPC and UTS namespaces, in a root that holds neither the host's
// /etc/shadow nor the state directory (other sandboxes), with /etc/resolv.conf naming the
// namespace's DNS forwarder, inside the sandbox's cgroup with its memory and pids limits.
// The virtiofsds serving the VM keep exactly the capabilities vmfs.c documents, in their
// own namespaces, rooted in their share, in the same cgroup. The VM still runs commands.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  connectStdio,
  onCleanup,
  skip,
  skipUnlessRoot,
  tempStateDir,
  test,
} from "../integration/lib/harness.mjs";

skipUnlessRoot("the qemu backend needs root (virtiofsd)");
const onPath = (bin) =>
  (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => existsSync(join(d, bin)));
if (!onPath("qemu-system-x86_64")) skip("qemu-system-x86_64 is not installed");
if (!existsSync("/usr/lib/qemu/virtiofsd")) skip("/usr/lib/qemu/virtiofsd is not installed");
const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
if (!existsSync(join(guestDir, "vmlinuz"))) skip(`no guest kernel in ${guestDir} (run tools/build-guest-kernel.sh)`);

// confine.h and vmfs.c: the uid range, the VMM's memory overhead, the pids limit, and the
// capabilities virtiofsd keeps to serve files as any guest uid.
const UID_BASE = 0x70000000;
const UID_SLOTS = 0x01000000;
const OVERHEAD = 256 * 1024 * 1024;
const PIDS_MAX = 512;
const CAP = { chown: 0, dac_override: 1, fowner: 3, fsetid: 4, setgid: 6, setuid: 7, mknod: 27, setfcap: 31 };
const VIRTIOFSD_CAPS = Object.values(CAP).reduce((m, bit) => m | (1n << BigInt(bit)), 0n);

const stateDir = tempStateDir();
const env = { WARREN_GUEST_DIR: guestDir, WARREN_QEMU_ACCEL: process.env.WARREN_QEMU_ACCEL ?? "tcg" };
const client = await connectStdio({ stateDir, args: ["--backend", "qemu"], env });
onCleanup(() => callTool(client, "sandbox_destroy", { id: sb.id }).catch(() => {}));
const MEMORY_MIB = 512;
const sb = await callTool(
  client,
  "sandbox_create",
  { name: "confined", memory_mib: MEMORY_MIB, cpus: 1 },
  { timeout: 180_000 },
);
const dir = join(stateDir, "sandboxes", sb.id);
const listed = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
const qemu = listed.pid;

function status(pid) {
  const fields = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}
const caps = (s, set) => BigInt(`0x${s[set]}`);
const ns = (pid, name) => readlinkSync(`/proc/${pid}/ns/${name}`);
const NAMESPACES = ["net", "pid", "mnt", "ipc", "uts"];

// The virtiofsds serving this sandbox: with sandbox=namespace each one forks, and the
// child (in its new PID namespace) serves; the parent only waits for it.
function virtiofsds() {
  const found = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[0] === "virtiofsd" && argv.some((a) => a.startsWith(`--socket-path=${dir}/`)))
        found.push({ pid: Number(name), ppid: Number(status(name).PPid), socket: argv[1] });
    } catch {}
  }
  const pids = new Set(found.map((p) => p.pid));
  return {
    serving: found.filter((p) => pids.has(p.ppid)),
    waiting: found.filter((p) => !pids.has(p.ppid)),
  };
}
// What a virtiofsd starts with (vmfs.c): the 8 it keeps and the 3 its own setup drops.
const VIRTIOFSD_START_CAPS = VIRTIOFSD_CAPS | (1n << 21n) | (1n << 8n) | (1n << 24n);

function cgroupFile(controller, file) {
  const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
  const base = v2 ? "/sys/fs/cgroup" : `/sys/fs/cgroup/${controller}`;
  return join(base, "warren", sb.id, v2 ? file : { "memory.max": "memory.limit_in_bytes" }[file] ?? file);
}

test("QEMU runs as its own unprivileged uid, no capabilities, no_new_privs, its seccomp filter", () => {
  const s = status(qemu);
  const uids = s.Uid.split(/\s+/).map(Number);
  const gids = s.Gid.split(/\s+/).map(Number);
  for (const id of [...uids, ...gids]) {
    assert.ok(id >= UID_BASE && id < UID_BASE + UID_SLOTS, `uid/gid ${id} outside the VMM range`);
  }
  assert.equal(new Set(uids).size, 1, s.Uid);
  assert.equal(s.Groups, "", "no supplementary groups");
  for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(caps(s, set), 0n, `${set} ${s[set]}`);
  assert.equal(s.NoNewPrivs, "1");
  assert.equal(s.Seccomp, "2", "QEMU's -sandbox filter");
});

test("QEMU's root holds its binaries and boot files, not /etc/shadow, /home or the state directory", () => {
  const root = `/proc/${qemu}/root`;
  assert.ok(existsSync(`${root}/usr/bin/qemu-system-x86_64`));
  assert.ok(!existsSync(`${root}/etc/shadow`), "/etc/shadow is visible");
  assert.ok(!existsSync(`${root}/etc/passwd`), "/etc/passwd is visible");
  assert.ok(!existsSync(`${root}/home`) && !existsSync(`${root}/root`));
  assert.equal(readFileSync(`${root}/etc/resolv.conf`, "utf8"), "nameserver 10.0.2.3\n");
  // Of the state directory only the boot files and the sandbox's own virtiofsd sockets.
  assert.deepEqual(readdirSync(`${root}${stateDir}`).sort(), ["guest", "sandboxes"]);
  for (const file of readdirSync(`${root}${stateDir}/guest`, { recursive: true })) {
    assert.ok(!/shadow|passwd|\.db$/.test(file), `unexpected ${file} among the boot files`);
  }
  assert.deepEqual(readdirSync(`${root}${stateDir}/sandboxes`), [sb.id]);
  assert.deepEqual(readdirSync(`${root}${dir}`).sort(), ["fs-root.sock", "fs-workspace.sock"]);
  assert.ok(!existsSync(`${root}${dir}/root`), "the sandbox's layers are not QEMU's");
});

test("QEMU has its own network (loopback up), PID, mount, IPC and UTS namespaces", () => {
  for (const name of NAMESPACES) assert.notEqual(ns(qemu, name), ns("self", name), `${name} namespace is the host's`);
  const lo = execFileSync("nsenter", ["-t", String(qemu), "-n", "ip", "-o", "link", "show", "lo"], { encoding: "utf8" });
  assert.match(lo, /[<,]UP[,>]/, lo);
  const links = execFileSync("nsenter", ["-t", String(qemu), "-n", "ip", "-o", "link"], { encoding: "utf8" });
  assert.equal(links.trim().split("\n").length, 1, `network: false has only lo:\n${links}`);
  // QEMU is PID 1 of its PID namespace: alone there.
  assert.match(readFileSync(`/proc/${qemu}/status`, "utf8"), /\nNSpid:\s+\d+\s+1\n/);
});

test("the sandbox's cgroup holds QEMU and the virtiofsds, with memory, pids and cpu limits", () => {
  assert.equal(Number(readFileSync(cgroupFile("memory", "memory.max"), "utf8")), MEMORY_MIB * 1024 * 1024 + OVERHEAD);
  assert.equal(Number(readFileSync(cgroupFile("pids", "pids.max"), "utf8")), PIDS_MAX);
  // cpus + 1 whole CPUs of quota per 100 ms period (v1: where the cpu hierarchy is there).
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) {
    assert.equal(readFileSync(cgroupFile("cpu", "cpu.max"), "utf8").trim(), "200000 100000");
  } else if (existsSync(cgroupFile("cpu", ""))) {
    assert.equal(Number(readFileSync(cgroupFile("cpu", "cpu.cfs_quota_us"), "utf8")), 200000);
  }
  const procs = readFileSync(cgroupFile("pids", "cgroup.procs"), "utf8").split("\n").map(Number);
  assert.ok(procs.includes(qemu), `QEMU ${qemu} not in ${procs}`);
  const { serving, waiting } = virtiofsds();
  for (const v of [...serving, ...waiting]) assert.ok(procs.includes(v.pid), `virtiofsd ${v.pid} not in the cgroup`);
});

test("virtiofsd keeps only the capabilities to serve files as any guest uid, in its own namespaces and share", () => {
  const { serving, waiting } = virtiofsds();
  assert.equal(serving.length, 2, JSON.stringify(serving));
  // The parent of each (it only waits for its child, outside the child's namespaces) is
  // held to the starting set and no_new_privs.
  for (const v of waiting) {
    const s = status(v.pid);
    assert.equal(caps(s, "CapBnd") & ~VIRTIOFSD_START_CAPS, 0n, `waiting virtiofsd CapBnd ${s.CapBnd}`);
    assert.equal(s.NoNewPrivs, "1");
  }
  for (const v of serving) {
    const s = status(v.pid);
    assert.equal(caps(s, "CapEff"), VIRTIOFSD_CAPS, `CapEff ${s.CapEff}`);
    assert.equal(caps(s, "CapPrm"), VIRTIOFSD_CAPS, `CapPrm ${s.CapPrm}`);
    assert.equal(caps(s, "CapBnd") & ~VIRTIOFSD_CAPS, 0n, `CapBnd ${s.CapBnd}`);
    assert.equal(caps(s, "CapInh") | caps(s, "CapAmb"), 0n);
    assert.equal(s.NoNewPrivs, "1");
    assert.equal(s.Seccomp, "2");
    for (const name of NAMESPACES) assert.notEqual(ns(v.pid, name), ns("self", name), `${name} namespace is the host's`);
    // Its root is its share: the guest's files, not the host's.
    const root = `/proc/${v.pid}/root`;
    assert.ok(!existsSync(`${root}${stateDir}`), "the state directory is visible");
    assert.ok(!existsSync(`${root}/proc/1/root${stateDir}`), "the host's processes are visible");
  }
});

test("the confined VM still runs commands", async () => {
  const r = await callTool(client, "sandbox_exec", { id: sb.id, command: "id -u; cat /proc/cmdline" });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.match(r.stdout, /^0\n/);
  await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.ok(!existsSync(cgroupFile("pids", "")), "the cgroup outlived the sandbox");
  assert.ok(!existsSync(`/proc/${qemu}`) || !readFileSync(`/proc/${qemu}/cmdline`, "utf8").includes(dir));
});
