// The sandbox really is a sandbox: host files in /root, /home and /tmp are invisible,
// secrets in /etc are masked, /usr is read-only, the user's repository cannot be changed,
// there is no network unless asked for, kernel modules / mounts / namespaces are refused
// by the kernel before it looks at the arguments, guest-init is PID 1 of its own pid
// namespace, the hostname is the sandbox name, and the memory limit holds.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  callTool,
  connectStdio,
  fileTree,
  git,
  makeGitRepo,
  onCleanup,
  skip,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const rand = randomBytes(6).toString("hex");
const repo = makeGitRepo({
  "README.md": "isolation\n",
  "src/a.c": "int a;\n",
  "bin/tool.sh": { content: "#!/bin/sh\necho tool\n", mode: 0o755 },
  "link": { symlink: "README.md" },
});

const repoBefore = fileTree(repo);

let client;
let sb;
const name = `iso-${rand}`;
const exec = (command, extra = {}) => callTool(client, "sandbox_exec", { id: sb.id, command, ...extra });

test("create the sandbox", async () => {
  client = await connectStdio({ stateDir });
  sb = await callTool(client, "sandbox_create", { name, repo });
  assert.equal(sb.state, "running");
});

test("host files in /root, /home and /tmp are invisible", async () => {
  const markers = [`/root/warren-isolation-marker-${rand}`, `/tmp/warren-isolation-marker-${rand}`];
  const homeDir = `/home/warren-isolation-${rand}`;
  for (const m of markers) writeFileSync(m, "host secret\n");
  execFileSync("mkdir", ["-p", homeDir]);
  writeFileSync(`${homeDir}/marker`, "host secret\n");
  onCleanup(() => {
    for (const m of markers) rmSync(m, { force: true });
    rmSync(homeDir, { recursive: true, force: true });
  });
  const ls = await exec("ls -la /root /home /tmp");
  assert.doesNotMatch(ls.stdout, new RegExp(rand), ls.stdout);
  for (const path of [...markers, `${homeDir}/marker`]) {
    const r = await exec(`cat ${path}`);
    assert.notEqual(r.exit_code, 0, `${path} readable in the sandbox: ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /host secret/);
  }
  // The state directory (sqlite store, other sandboxes' layers, the token) is not there.
  const st = await exec(`ls ${stateDir}`);
  assert.notEqual(st.exit_code, 0, `state directory visible: ${st.stdout}`);
  const ws = await exec("find / -xdev -name warren.db 2>/dev/null | head -5");
  assert.equal(ws.stdout, "");
});

test("/etc secrets are masked; /usr and /etc are copy-on-write: the host never changes", async () => {
  const shadow = await exec("cat /etc/shadow");
  assert.ok(shadow.exit_code !== 0 || shadow.stdout === "", `/etc/shadow readable: ${shadow.stdout.slice(0, 200)}`);
  if (existsSync("/etc/gshadow")) {
    const g = await exec("cat /etc/gshadow");
    assert.ok(g.exit_code !== 0 || g.stdout === "", `/etc/gshadow readable: ${g.stdout.slice(0, 200)}`);
  }
  const passwd = await exec("cat /etc/passwd");
  assert.equal(passwd.exit_code, 0);
  assert.match(passwd.stdout, /^root:/m);

  const paths = ["/usr/warren-x", "/usr/bin/warren-x", "/etc/warren-x", "/opt/warren-x", "/var/lib/warren-x"];
  if (!lstatSync("/bin").isSymbolicLink()) paths.push("/bin/warren-x");
  for (const path of paths) {
    const r = await exec(`echo inside > ${path} && cat ${path}`);
    assert.equal(r.exit_code, 0, `writing ${path}: ${r.stderr}`);
    assert.equal(r.stdout, "inside\n");
    assert.equal(existsSync(path), false, `${path} appeared on the host`);
  }
  const hostPasswd = readFileSync("/etc/passwd", "utf8");
  const rm = await exec("rm /usr/bin/env && test ! -e /usr/bin/env && echo gone");
  assert.equal(rm.stdout, "gone\n", rm.stderr);
  assert.ok(existsSync("/usr/bin/env"), "the host's /usr/bin/env was removed");
  const edit = await exec("chmod 600 /etc/passwd && echo 'x:x:999:999::/:/bin/sh' >> /etc/passwd && tail -1 /etc/passwd");
  assert.equal(edit.stdout, "x:x:999:999::/:/bin/sh\n", edit.stderr);
  assert.equal(readFileSync("/etc/passwd", "utf8"), hostPasswd, "the host's /etc/passwd changed");
  // dpkg's database is the host's own, so dpkg and apt know what is installed.
  if (existsSync("/var/lib/dpkg/status")) {
    const dpkg = await exec("dpkg-query -W -f='${Package}\\n' dpkg");
    assert.equal(dpkg.stdout, "dpkg\n", dpkg.stderr);
  }
});

test("the user's repository cannot be written", async () => {
  const r = await exec(
    "echo changed > README.md && rm src/a.c && chmod 000 bin/tool.sh && rm link && " +
      "mkdir -p newdir && echo x > newdir/f && git init -q . 2>/dev/null; touch .git/evil 2>/dev/null; " +
      "mv bin moved-bin && ls",
  );
  assert.equal(r.exit_code, 0, r.stderr);
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "src/new.c", content: "int b;\n", create_dirs: true });
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "/workspace/.gitignore", content: "*\n" });
  assert.deepEqual(fileTree(repo), repoBefore);
  assert.equal(git(repo, "status", "--porcelain", "--ignored"), "");
  assert.equal(existsSync(join(repo, ".git", "evil")), false);
});

test("no network unless network: true, and never the host's loopback", async () => {
  const conns = [];
  const srv = createServer((s) => {
    conns.push(s);
    s.end("hello from the host\n");
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise((r) => srv.close(r)));
  const port = srv.address().port;

  const dev = await exec("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ls /sys/class/net");
  const ifaces = new Set(dev.stdout.split(/\s+/).filter(Boolean));
  assert.deepEqual([...ifaces], ["lo"], dev.stdout);

  const probe = `timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3'`;
  const r = await exec(probe);
  assert.notEqual(r.exit_code, 0, `connected to the host from a sandbox without network: ${r.stdout}`);
  assert.doesNotMatch(r.stdout, /hello from the host/);
  assert.equal(conns.length, 0);

  const netSb = await callTool(client, "sandbox_create", { name: `iso-net-${rand}`, network: true });
  try {
    assert.equal(netSb.network, true);
    // Its own network namespace: the host's 127.0.0.1 is not its 127.0.0.1. What it does
    // reach is probed in tests/security/network.test.mjs.
    const net = await callTool(client, "sandbox_exec", { id: netSb.id, command: "ls /sys/class/net; " + probe });
    assert.notEqual(net.exit_code, 0);
    assert.match(net.stdout, /^tap0$/m);
    assert.doesNotMatch(net.stdout, /hello from the host/);
    assert.equal(conns.length, 0);
  } finally {
    await callTool(client, "sandbox_destroy", { id: netSb.id });
  }
});

const probeSource = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, long r)
{
    printf("%s %s\n", name, r == -1 ? strerrorname_np(errno) : "OK");
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "alloc")) {
        size_t mib = strtoul(argv[2], NULL, 10);
        for (size_t i = 0; i < mib; i++) {
            char *p = malloc(1 << 20);
            if (!p) { printf("malloc failed at %zu MiB\n", i); return 3; }
            memset(p, 0x5a, 1 << 20);
        }
        printf("allocated %zu MiB\n", mib);
        return 0;
    }
    static char image[4096] = "\177ELF not really a module";
    report("init_module", syscall(SYS_init_module, image, sizeof(image), ""));
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    report("finit_module", syscall(SYS_finit_module, fd, "", 0));
    report("mount", mount("none", "/mnt", "tmpfs", 0, NULL));
    report("unshare_newns", unshare(CLONE_NEWNS));
    report("unshare_newuser", unshare(CLONE_NEWUSER));
    report("unshare_newnet", unshare(CLONE_NEWNET));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("add_key", syscall(SYS_add_key, "user", "warren", "x", 1, -2));
    struct timespec ts = {0};
    clock_gettime(CLOCK_REALTIME, &ts);
    report("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
    report("umount_workspace", umount2("/workspace", MNT_DETACH));
    report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    return 0;
}
`;

let probeInstalled = false;
async function installProbe() {
  if (probeInstalled) return;
  let gcc;
  try {
    gcc = execFileSync("sh", ["-c", "command -v gcc"], { encoding: "utf8" }).trim();
  } catch {
    skip("no gcc on the host to build the probe");
  }
  const dir = mkdtempSync(join(tmpdir(), "warren-it-probe-"));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "probe.c"), probeSource);
  try {
    execFileSync(gcc, ["-static", "-O2", "-o", join(dir, "probe"), join(dir, "probe.c")], { stdio: "pipe" });
  } catch (e) {
    skip(`cannot build a static probe: ${e.stderr}`);
  }
  const bin = readFileSync(join(dir, "probe"));
  const w = await callTool(client, "sandbox_write_file", {
    id: sb.id,
    path: "/workspace/probe",
    content: bin.toString("base64"),
    encoding: "base64",
    mode: "0755",
  });
  assert.equal(w.bytes_written, bin.length);
  probeInstalled = true;
}

test("module loading, mount and new namespaces are refused with EPERM", async () => {
  await installProbe();
  const r = await exec("/workspace/probe");
  assert.equal(r.exit_code, 0, r.stderr);
  const got = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" ")));
  // These must be stopped before the kernel looks at the arguments: ENOEXEC, EINVAL,
  // EFAULT, ENOENT and the like would mean the call got through.
  for (const call of ["init_module", "finit_module", "mount", "unshare_newns"])
    assert.equal(got[call], "EPERM", `${call}: ${got[call]}\n${r.stdout}`);
  for (const call of ["unshare_newuser", "unshare_newnet", "kexec_load", "bpf", "add_key", "clock_settime", "umount_workspace", "pivot_root"])
    assert.ok(["EPERM", "EACCES", "ENOSYS"].includes(got[call]), `${call} was not refused: ${got[call]}\n${r.stdout}`);
});

test("guest-init is PID 1 of its own pid namespace; the hostname is the sandbox name", async () => {
  const r = await exec("cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; cat /proc/sys/kernel/hostname; ps -e -o pid=,comm=");
  const [cmdline, hostname, kernelHostname, ...ps] = r.stdout.trim().split("\n");
  assert.match(cmdline, /^(\S*\/)?guest-init\b/, cmdline);
  assert.equal(hostname, name);
  assert.equal(kernelHostname, name);
  const procs = ps.map((l) => l.trim().split(/\s+/));
  assert.ok(procs.length <= 6, `too many processes visible:\n${ps.join("\n")}`);
  assert.equal(procs[0][0], "1");
  assert.doesNotMatch(ps.join("\n"), /\b(node|warren|systemd|process_api)\b/, "host processes visible");
  // Our own pid on the host means nothing inside.
  const mine = await exec(`cat /proc/${process.pid}/cmdline 2>/dev/null | tr '\\0' ' '`);
  assert.doesNotMatch(mine.stdout, /node/);
  // The exec'd command runs in the same namespace as PID 1: its parent is guest-init.
  const ppid = await exec("echo $PPID");
  assert.equal(ppid.stdout, "1\n");
  // The sandbox's own identity files, not the host's.
  const id = await exec(`cat /etc/hostname; getent hosts ${name}`);
  const [etcHostname, resolved] = id.stdout.trim().split("\n");
  assert.equal(etcHostname, name);
  assert.match(resolved ?? "", new RegExp(`^127\\.0\\.1\\.1\\s+${name}$`));
});

test("the memory limit is enforced; the sandbox survives an OOM kill", async () => {
  await installProbe();
  const small = await callTool(client, "sandbox_create", { name: `iso-mem-${rand}`, memory_mib: 64 });
  try {
    assert.equal(small.memory.configured_mib, 64);
    // Copy the probe from the other sandbox through the host (read base64, write base64).
    const bin = await callTool(client, "sandbox_read_file", { id: sb.id, path: "/workspace/probe", encoding: "base64" });
    await callTool(client, "sandbox_write_file", {
      id: small.id,
      path: "/tmp/probe",
      content: bin.content,
      encoding: "base64",
      mode: "0755",
    });
    // 32 MiB fits.
    let r = await callTool(client, "sandbox_exec", { id: small.id, argv: ["/tmp/probe", "alloc", "32"] });
    assert.equal(r.exit_code, 0, JSON.stringify(r));
    assert.equal(r.stdout, "allocated 32 MiB\n");
    // 200 MiB does not.
    r = await callTool(client, "sandbox_exec", { id: small.id, argv: ["/tmp/probe", "alloc", "200"], timeout_seconds: 60 });
    assert.doesNotMatch(r.stdout, /allocated 200 MiB/, JSON.stringify(r));
    assert.equal(r.timed_out, false);
    assert.ok(r.signal === 9 || r.exit_code === 137 || r.exit_code === 3, `not killed by the OOM killer: ${JSON.stringify(r)}`);
    // The sandbox and the server are still there.
    r = await callTool(client, "sandbox_exec", { id: small.id, command: "echo still here" });
    assert.equal(r.stdout, "still here\n");
    const { sandboxes } = await callTool(client, "sandbox_list");
    const listed = sandboxes.find((s) => s.id === small.id);
    assert.equal(listed?.state, "running");
    assert.equal(listed.memory.configured_mib, 64);
    assert.ok(listed.memory.usage_bytes <= 64 * 1024 * 1024, `usage ${listed.memory.usage_bytes} over the limit`);
  } finally {
    await callTool(client, "sandbox_destroy", { id: small.id });
  }
});

test("clean up", async () => {
  await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.deepEqual((await callTool(client, "sandbox_list")).sandboxes, []);
  assert.deepEqual(fileTree(repo), repoBefore);
});
