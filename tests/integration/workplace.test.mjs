// The sandbox as a workplace: every path is writable, copy-on-write over the host image.
// Packages install with dpkg, users are added, /etc is edited; the host never changes,
// and the changes carry through snapshots, forks and restarts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";

import {
  buildDeb,
  callTool,
  connectStdio,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const client = await connectStdio({ stateDir });
const sh = async (id, command) => {
  const r = await callTool(client, "sandbox_exec", { id, command, timeout_seconds: 120 });
  assert.equal(r.exit_code, 0, `${command}: ${r.stderr}${r.stdout}`);
  return r.stdout;
};
const digest = (path) => (existsSync(path) ? createHash("sha256").update(readFileSync(path)).digest("hex") : null);
// What must not change on the host, whatever the sandboxes do.
const hostFiles = ["/etc/passwd", "/etc/group", "/var/lib/dpkg/status", "/etc/hosts", "/usr/bin/env"];
const hostBefore = Object.fromEntries(hostFiles.map((f) => [f, digest(f)]));
const pkg = "warren-test-hello";
const sb = await callTool(client, "sandbox_create", { name: "workplace" });

test("dpkg installs a package into /usr and records it in dpkg's database", async () => {
  await callTool(client, "sandbox_write_file", { id: sb.id, path: `/tmp/${pkg}.deb`, content: buildDeb(pkg), encoding: "base64" });
  await sh(sb.id, `dpkg -i /tmp/${pkg}.deb`);
  assert.equal(await sh(sb.id, `cat /usr/share/${pkg}/hello`), "hello from a package\n");
  assert.match(await sh(sb.id, `dpkg -s ${pkg}`), /Status: install ok installed/);
  // dpkg's database below is the host's: the host's packages are known.
  assert.match(await sh(sb.id, "dpkg -s dpkg"), /Status: install ok installed/);
  assert.equal(existsSync(`/usr/share/${pkg}`), false, "the package landed on the host");
});

test("apt's state is there and writable; apt-get works from the host's lists", async () => {
  await sh(sb.id, "test -d /var/lib/apt/lists && test -d /var/cache/apt && touch /var/lib/apt/lists/warren-x");
  await sh(sb.id, "apt-get check");
  assert.equal(existsSync("/var/lib/apt/lists/warren-x"), false);
});

test("users and /etc edits: useradd works without the host's shadow files", async () => {
  await sh(sb.id, "useradd -r -M -s /usr/sbin/nologin svc && id -u svc");
  await sh(sb.id, "echo '203.0.113.7 db.internal' >> /etc/hosts && getent hosts db.internal");
  await sh(sb.id, "mkdir -p /opt/tool && echo 1 > /opt/tool/v && echo 'export X=1' > /etc/profile.d/x.sh");
  assert.equal(await sh(sb.id, "test ! -e /etc/shadow && echo no-shadow"), "no-shadow\n");
});

test("changes carry through a snapshot, a fork and a restart", async () => {
  await callTool(client, "sandbox_snapshot", { id: sb.id, name: "with-package" });
  const fork = await callTool(client, "sandbox_restore", { snapshot: "with-package", name: "workplace-fork" });
  for (const id of [sb.id, fork.id]) {
    assert.match(await sh(id, `dpkg -s ${pkg}`), /install ok installed/);
    assert.equal(await sh(id, "id -u svc >/dev/null && cat /opt/tool/v"), "1\n");
    assert.match(await sh(id, "getent hosts db.internal"), /203\.0\.113\.7/);
  }
  // The fork has its own name, and keeps the rest of the /etc/hosts it was forked with.
  assert.equal(await sh(fork.id, "cat /etc/hostname"), "workplace-fork\n");
  assert.match(await sh(fork.id, "getent hosts workplace-fork"), /^127\.0\.1\.1\s+workplace-fork\n$/);
  await sh(fork.id, `dpkg -r ${pkg} && test ! -e /usr/share/${pkg}/hello`);
  assert.equal(await sh(sb.id, `cat /usr/share/${pkg}/hello`), "hello from a package\n");
  // A sandbox whose processes died boots again with its files.
  const listed = (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id);
  process.kill(listed.pid, "SIGKILL");
  await waitFor("the sandbox to be stopped", async () =>
    (await callTool(client, "sandbox_list")).sandboxes.find((s) => s.id === sb.id).state === "stopped");
  const again = await callTool(client, "sandbox_resume", { id: sb.id });
  assert.equal(again.state, "running");
  assert.match(await sh(sb.id, `dpkg -s ${pkg}`), /install ok installed/);
  assert.match(await sh(sb.id, "getent hosts db.internal"), /203\.0\.113\.7/);
});

test("the host is unchanged", () => {
  for (const f of hostFiles) assert.equal(digest(f), hostBefore[f], `${f} changed on the host`);
  assert.equal(existsSync(`/usr/share/${pkg}`), false);
  assert.equal(existsSync("/opt/tool"), false);
});
