// Sandboxes outlive the server: after `kill -9` of warren, a new warren on the same state
// directory lists them running and uses them; a sandbox whose PID 1 died is listed as
// stopped with its files kept, refuses exec with a clear message, and can be destroyed;
// two warren processes share one state directory. An allow-list sandbox's egress proxy is
// served again by the new server, and its snapshot's forks keep the policy.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  callTool,
  callToolError,
  connectStdio,
  makeGitRepo,
  processRuns,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  waitFor,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const repo = makeGitRepo({ "README.md": "restart\n" });

let first;
let a;
let b;

test("create two sandboxes and write a file in each", async () => {
  first = await connectStdio({ stateDir });
  a = await callTool(first, "sandbox_create", { name: "restart-a", repo });
  b = await callTool(first, "sandbox_create", { name: "restart-b", network: { allow: ["listed.test"] } });
  await callTool(first, "sandbox_write_file", { id: a.id, path: "kept.txt", content: "file in a\n" });
  await callTool(first, "sandbox_write_file", { id: b.id, path: "kept.txt", content: "file in b\n" });
  // A process started in the sandbox survives the server too.
  const r = await callTool(first, "sandbox_exec", { id: a.id, command: "(setsid sleep 600 >/dev/null 2>&1 &) ; echo ok" });
  assert.equal(r.stdout, "ok\n");
  // And so does a snapshot (b restarts around it: take its new pid).
  await callTool(first, "sandbox_snapshot", { id: b.id, name: "restart-snap" });
  b = (await callTool(first, "sandbox_list")).sandboxes.find((s) => s.id === b.id);
  assert.equal(await proxyAnswer(first, b.id), "403");
});

// The egress proxy's answer to a name off the list (403), or 000 when nothing listens.
async function proxyAnswer(client, id) {
  const r = await callTool(client, "sandbox_exec", {
    id, command: "curl -s -m 5 -o /dev/null -w '%{http_code}' http://unlisted.test/" });
  return r.stdout;
}

test("kill -9 the server; a new one on the same state dir uses both sandboxes", async () => {
  const serverPid = first.transport.pid;
  assert.ok(serverPid > 0, "the SDK's StdioClientTransport does not expose pid");
  process.kill(serverPid, "SIGKILL");
  await waitFor("the killed server to exit", () => !processRuns(serverPid));
  assert.ok(processRuns(a.pid), "sandbox a died with the server");
  assert.ok(processRuns(b.pid), "sandbox b died with the server");

  const second = await connectStdio({ stateDir });
  const { sandboxes } = await callTool(second, "sandbox_list");
  const byId = Object.fromEntries(sandboxes.map((s) => [s.id, s]));
  assert.equal(byId[a.id]?.state, "running", JSON.stringify(sandboxes));
  assert.equal(byId[b.id]?.state, "running", JSON.stringify(sandboxes));
  assert.equal(byId[a.id].name, "restart-a");
  assert.equal(byId[a.id].repo, repo);
  assert.equal(byId[a.id].pid, a.pid);

  for (const [sb, text] of [[a, "file in a\n"], [b, "file in b\n"]]) {
    const r = await callTool(second, "sandbox_exec", { id: sb.id, command: "cat kept.txt" });
    assert.equal(r.stdout, text);
    const f = await callTool(second, "sandbox_read_file", { id: sb.name, path: "kept.txt" });
    assert.equal(f.content, text);
  }
  const { snapshots } = await callTool(second, "snapshot_list");
  assert.deepEqual(snapshots.map((x) => x.name), ["restart-snap"]);
  assert.equal(await proxyAnswer(second, b.id), "403", "the new server serves b's egress proxy");
  const fork = await callTool(second, "sandbox_restore", { snapshot: "restart-snap" });
  assert.equal((await callTool(second, "sandbox_exec", { id: fork.id, command: "cat kept.txt" })).stdout, "file in b\n");
  assert.deepEqual(fork.network, { allow: ["listed.test"], deny: [] });
  assert.equal(await proxyAnswer(second, fork.id), "403");
  await callTool(second, "sandbox_destroy", { id: fork.id });
  const ps = await callTool(second, "sandbox_exec", { id: a.id, command: "ps -eo args" });
  assert.match(ps.stdout, /sleep 600/);
  await callTool(second, "sandbox_write_file", { id: a.id, path: "after-restart.txt", content: "second server\n" });
  await second.close();
});

test("a sandbox whose PID 1 is killed is listed stopped, keeps its files, refuses exec, can be destroyed", async () => {
  const client = await connectStdio({ stateDir });
  const { sandboxes } = await callTool(client, "sandbox_list");
  const pid = sandboxes.find((s) => s.id === a.id).pid;
  assert.ok(pid > 0);
  process.kill(pid, "SIGKILL");
  await waitFor("PID 1 of the sandbox to die", () => !processRuns(pid));

  const listed = await waitFor("the sandbox to be listed stopped", async () => {
    const { sandboxes: now } = await callTool(client, "sandbox_list");
    const s = now.find((x) => x.id === a.id);
    return s?.state === "stopped" ? s : null;
  });
  assert.equal(listed.name, "restart-a");
  // The other sandbox is unaffected.
  const { sandboxes: now } = await callTool(client, "sandbox_list");
  assert.equal(now.find((x) => x.id === b.id)?.state, "running");
  assert.equal((await callTool(client, "sandbox_exec", { id: b.id, command: "cat kept.txt" })).stdout, "file in b\n");

  // Files are kept in the upper layer on the host.
  const upper = join(stateDir, "sandboxes", a.id, "disk", "workspace", "upper");
  assert.ok(existsSync(upper), `${upper} missing`);
  assert.equal(readFileSync(join(upper, "kept.txt"), "utf8"), "file in a\n");
  assert.equal(readFileSync(join(upper, "after-restart.txt"), "utf8"), "second server\n");

  // exec says it is stopped.
  const text = await callToolError(client, "sandbox_exec", { id: a.id, command: "true" });
  assert.match(text, /stopped/, text);
  assert.match(await callToolError(client, "sandbox_exec", { id: "restart-a", command: "true" }), /stopped/);

  // Destroy works on a stopped sandbox and removes its layers.
  const d = await callTool(client, "sandbox_destroy", { id: a.id });
  assert.equal(d.destroyed, true);
  assert.equal(existsSync(join(stateDir, "sandboxes", a.id)), false, "layers left after destroy");
  const after = await callTool(client, "sandbox_list");
  assert.deepEqual(after.sandboxes.map((s) => s.id), [b.id]);
  await callTool(client, "sandbox_destroy", { id: b.id });
  assert.equal(processRuns(b.pid), false, "sandbox b still runs after destroy");
  assert.deepEqual((await callTool(client, "sandbox_list")).sandboxes, []);
  await client.close();
});

test("two warren processes on one state directory, creating concurrently", async () => {
  const shared = tempStateDir();
  sweepSandboxesAtEnd(shared);
  const [c1, c2] = await Promise.all([connectStdio({ stateDir: shared }), connectStdio({ stateDir: shared })]);
  const created = await Promise.all(
    [c1, c2].flatMap((c, ci) =>
      [0, 1, 2].map((i) => callTool(c, "sandbox_create", { name: `shared-${ci}-${i}` })),
    ),
  );
  assert.equal(new Set(created.map((s) => s.id)).size, 6);
  const names = created.map((s) => s.name).sort();
  for (const c of [c1, c2]) {
    const { sandboxes } = await callTool(c, "sandbox_list");
    assert.deepEqual(sandboxes.map((s) => s.name).sort(), names);
    assert.ok(sandboxes.every((s) => s.state === "running"), JSON.stringify(sandboxes.map((s) => [s.name, s.state])));
  }
  // Each server can use a sandbox the other one made.
  const r1 = await callTool(c1, "sandbox_exec", { id: "shared-1-0", command: "hostname" });
  assert.equal(r1.stdout, "shared-1-0\n");
  const r2 = await callTool(c2, "sandbox_exec", { id: "shared-0-2", command: "hostname" });
  assert.equal(r2.stdout, "shared-0-2\n");
  // A name taken through one server is taken for the other too.
  assert.match(await callToolError(c2, "sandbox_create", { name: "shared-0-0" }), /exists/);
  // Destroy all, half through each server, concurrently.
  const destroyed = await Promise.all(created.map((s, i) => callTool(i % 2 ? c1 : c2, "sandbox_destroy", { id: s.id })));
  assert.ok(destroyed.every((d) => d.destroyed === true));
  for (const c of [c1, c2]) assert.deepEqual((await callTool(c, "sandbox_list")).sandboxes, []);
  for (const s of created) assert.equal(processRuns(s.pid), false, `${s.name} still runs`);
});
