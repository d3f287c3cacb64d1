// warren's Cloud Hypervisor driver (vmm/backends/ch/ch-api.c) against Cloud Hypervisor's published API
// description. Cloud Hypervisor itself cannot run on CI machines (no KVM, no binary): these
// cases drive the real C client (build/tests/test_ch_driver) against a stand-in server built
// from spec/cloud-hypervisor.yaml (lib/ch-standin.mjs) that routes, validates and frames
// replies like the real server. They prove that warren sends what the spec accepts and
// reads what the server sends; they do not prove that a VM boots.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { onCleanup, repoRoot, skip, test } from "./lib/harness.mjs";
import { loadSpec, startStandin } from "./lib/ch-standin.mjs";

const SPEC_BLOB = "7ca05c8b80ac33050d7b998d31d3dd0889a94264"; // spec/README.md's git blob id
const specPath = process.env.WARREN_CH_SPEC ?? join(repoRoot, "tests/integration/spec/cloud-hypervisor.yaml");
const buildDir = process.env.WARREN_BUILD_DIR ?? join(repoRoot, "build");
const driver = join(buildDir, "tests", "test_ch_driver");

console.log(
  "note: Cloud Hypervisor cannot run here (no KVM, no cloud-hypervisor binary). These tests check " +
    "warren's CH API client against a stand-in server generated from the published OpenAPI spec, " +
    "not against a real VMM.",
);
if (!existsSync(driver)) skip(`${driver} is not built`);
if (!existsSync(specPath)) skip(`no Cloud Hypervisor API spec at ${specPath}`);

const spec = loadSpec(specPath);
const dir = mkdtempSync(join(tmpdir(), "warren-ch-spec-"));
onCleanup(() => rmSync(dir, { recursive: true, force: true }));
let socketCount = 0;
const socketPath = () => join(dir, `api-${++socketCount}.sock`);

function runDriver(args) {
  return new Promise((resolve) => {
    execFile(driver, args, { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code ?? 1 : 0, stdout, stderr }),
    );
  });
}

const steps = (stdout) =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("step "))
    .map((l) => {
      const [, name, outcome, ...rest] = l.split(" ");
      return { name, outcome, rest: rest.join(" "), state: /state=(\w+)/.exec(l)?.[1] };
    });

// What each call must look like on the wire, beyond its body's schema.
function assertWellFormed(r) {
  assert.deepEqual(r.problems, [], `${r.method} ${r.target}: ${r.problems.join("; ")}`);
  assert.ok(r.op, `${r.target} is a path of the spec`);
  assert.equal(r.version, "HTTP/1.1");
  assert.equal(r.headers.host, "localhost");
  assert.equal(r.headers.accept, "application/json");
  assert.equal(r.headers["transfer-encoding"], undefined);
  const op = spec.routes.get(`/${r.op}`)[r.method.toLowerCase()];
  assert.ok(op, `${r.method} /${r.op} is in the spec`);
  if (op.schema) {
    assert.equal(r.headers["content-type"], "application/json");
    assert.equal(Number(r.headers["content-length"]), Buffer.byteLength(r.body));
    assert.deepEqual(spec.validate(op.schema, JSON.parse(r.body)), []);
  } else {
    assert.equal(r.body, "", `${r.op} is an action endpoint: no body`);
    if (r.method === "PUT") assert.equal(r.headers["content-length"], "0");
  }
}

test("the spec file is the published one, byte for byte", () => {
  const bytes = readFileSync(specPath);
  const blob = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
  assert.equal(blob, SPEC_BLOB);
});

test("request bodies validate against the spec's schemas", async () => {
  for (const [name, schema] of [
    ["vm.create", "VmConfig"],
    ["vm.resize", "VmResize"],
    ["vm.snapshot", "VmSnapshotConfig"],
    ["vm.restore", "RestoreConfig"],
  ]) {
    const { code, stdout, stderr } = await runDriver(["--body", name]);
    assert.equal(code, 0, stderr);
    const body = JSON.parse(stdout);
    assert.deepEqual(spec.validate(schema, body), [], `${name} body against ${schema}`);
  }
  // And the stand-in's strictness is real: a misspelled field is refused.
  const { stdout } = await runDriver(["--body", "vm.create"]);
  const bad = JSON.parse(stdout);
  bad.payload.initrd = bad.payload.initramfs;
  delete bad.payload.initramfs;
  assert.notDeepEqual(spec.validate("VmConfig", bad), []);
  const noCid = JSON.parse(stdout);
  noCid.vsock.cid = 2;
  assert.notDeepEqual(spec.validate("VmConfig", noCid), [], "cid below 3 is refused (minimum: 3)");
});

test("the stand-in answers like the real server", async () => {
  const path = socketPath();
  const standin = await startStandin({ socketPath: path, specPath });
  onCleanup(() => standin.close());
  const raw = (text) =>
    new Promise((resolve, reject) => {
      const s = createConnection(path);
      let out = "";
      s.on("data", (d) => {
        out += d;
        if (/\r\n\r\n/.test(out)) {
          const len = Number(/Content-Length: (\d+)/.exec(out)?.[1] ?? 0);
          if (out.length >= out.indexOf("\r\n\r\n") + 4 + len) {
            s.end();
            resolve(out);
          }
        }
      });
      s.on("error", reject);
      s.write(text);
    });
  const hdr = "Host: localhost\r\nAccept: application/json\r\n";
  assert.match(await raw(`GET /api/v1/vm.nothing HTTP/1.1\r\n${hdr}\r\n`), /^HTTP\/1\.1 404 \r\n[^]*\["Not Found"\]$/);
  assert.match(await raw(`GET /api/v1/vm.boot HTTP/1.1\r\n${hdr}\r\n`), /^HTTP\/1\.1 400 \r\n[^]*\["Bad Request"\]$/);
  assert.match(await raw(`PUT /api/v1/vm.boot HTTP/1.1\r\n${hdr}Content-Length: 2\r\n\r\n{}`), /^HTTP\/1\.1 400 /);
  assert.match(await raw(`PUT /api/v1/vm.boot HTTP/1.1\r\n${hdr}Content-Length: 0\r\n\r\n`), /^HTTP\/1\.1 404 \r\n/);
  const shutdown = await raw(`PUT /api/v1/vmm.shutdown HTTP/1.1\r\n${hdr}Content-Length: 0\r\n\r\n`);
  assert.match(shutdown, /^HTTP\/1\.1 200 \r\n[^]*Content-Length: 0\r\n\r\n$/);
  await standin.close();
});

async function runSequence({ dribble = false } = {}) {
  const path = socketPath();
  const standin = await startStandin({ socketPath: path, specPath, dribble });
  onCleanup(() => standin.close());
  const { code, stdout, stderr } = await runDriver(["--socket", path, "--sequence"]);
  await standin.close();
  assert.equal(code, 0, `driver failed:\n${stdout}\n${stderr}`);
  const s = steps(stdout);
  for (const step of s) assert.equal(step.outcome, "ok", `${step.name}: ${step.rest}`);
  assert.deepEqual(
    s.filter((x) => x.name === "vm.info").map((x) => x.state),
    ["Running", "Paused", "Running", "Running"],
  );
  assert.match(stdout, /step vm\.info ok 200 state=Paused memory_actual_size=536870912/);
  assert.match(stdout, /step vm\.info ok 200 state=Running memory_actual_size=268435456/); // after the balloon
  assert.match(stdout, /step vmm\.shutdown ok 200\n/);
  assert.match(stdout, /sequence complete/);
  assert.equal(standin.requests.length, s.length, "one request per step, nothing else");
  standin.requests.forEach(assertWellFormed);
  assert.deepEqual(
    standin.requests.map((r) => `${r.method} ${r.op}`),
    s.map((x) => `${spec.routes.get(`/${x.name}`).get ? "GET" : "PUT"} ${x.name}`),
  );
  assert.equal(standin.state(), "Shutdown");
}

test("a whole VM life: every request valid, every state reached", () => runSequence());

test("replies split into single bytes are read the same", () => runSequence({ dribble: true }));

test("an injected 500 on vm.boot surfaces with CH's messages", async () => {
  const path = socketPath();
  const messages = ["Error booting VM", "Failed to create device manager", "Invalid config"];
  const standin = await startStandin({ socketPath: path, specPath, failAt: { "vm.boot": messages } });
  onCleanup(() => standin.close());
  const { code, stdout, stderr } = await runDriver(["--socket", path, "--sequence", "--fail-at", "vm.boot"]);
  await standin.close();
  assert.equal(code, 0, `driver did not stop at vm.boot:\n${stdout}\n${stderr}`);
  assert.match(
    stdout,
    /step vm\.boot error cloud-hypervisor: vm\.boot: 500: Error booting VM: Failed to create device manager: Invalid config\n/,
  );
  assert.match(stdout, /sequence stopped at vm\.boot/);
  standin.requests.forEach(assertWellFormed);
  assert.deepEqual(standin.requests.map((r) => r.op), ["vmm.ping", "vm.create", "vm.boot"]);
});

test("no server: the driver fails at vmm.ping with the socket error", async () => {
  const { code, stdout } = await runDriver(["--socket", join(dir, "absent.sock"), "--sequence", "--fail-at", "vmm.ping"]);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /step vmm\.ping error cloud-hypervisor: vmm\.ping: connecting to .*absent\.sock: no such file/i);
});
