// ttl_seconds: the sandbox is listed with expires_at and the reaper (every 5 s) destroys
// it once that time has passed; a sandbox without a ttl is left alone.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  callTool,
  connectStdio,
  processRuns,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);

test("a sandbox with ttl_seconds 2 is reaped within ~15 s", async () => {
  const client = await connectStdio({ stateDir });
  const before = Date.now();
  const short = await callTool(client, "sandbox_create", { name: "ttl-short", ttl_seconds: 2 });
  const keep = await callTool(client, "sandbox_create", { name: "ttl-keep" });
  assert.equal(short.ttl_seconds, 2);
  assert.equal(keep.ttl_seconds, 0);
  assert.equal(keep.expires_at, null);

  const { sandboxes } = await callTool(client, "sandbox_list");
  const listed = sandboxes.find((s) => s.id === short.id);
  assert.ok(listed, "the ttl sandbox is not listed");
  assert.equal(typeof listed.expires_at, "string");
  const expires = Date.parse(listed.expires_at);
  assert.ok(!Number.isNaN(expires), `expires_at ${listed.expires_at} is not a date`);
  // created_at has second resolution: allow a little slack either side.
  assert.ok(expires >= before - 2000 && expires <= Date.now() + 4000, `expires_at ${listed.expires_at} is not ~2 s from now`);

  let gone = false;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const now = await callTool(client, "sandbox_list");
    if (!now.sandboxes.some((s) => s.id === short.id)) {
      gone = true;
      break;
    }
    await sleep(500);
  }
  assert.ok(gone, `ttl sandbox still listed ${(Date.now() - before) / 1000} s after creation`);
  const took = Date.now() - before;
  assert.ok(took >= 1500, `reaped after ${took} ms, before its ttl of 2 s`);
  await sleep(300);
  assert.equal(processRuns(short.pid), false, "the reaped sandbox's PID 1 still runs");
  assert.equal(existsSync(join(stateDir, "sandboxes", short.id)), false, "the reaped sandbox's layers are left");

  // The one without a ttl is untouched and works.
  const r = await callTool(client, "sandbox_exec", { id: keep.id, command: "echo kept" });
  assert.equal(r.stdout, "kept\n");
  await callTool(client, "sandbox_destroy", { id: keep.id });
});
