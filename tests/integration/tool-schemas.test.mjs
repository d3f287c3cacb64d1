// Tool definitions (mcp/tools/<tool>.json): every schema the server serves is a valid JSON
// Schema 2020-12, every example call in the files matches its tool's schemas, the served
// definitions are the files' (shared schemas put in place, examples left out), and the
// examples' arguments are accepted by the real tools.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { callTool, connectStdio, repoRoot, skipUnlessRoot, sweepSandboxesAtEnd, tempStateDir, test }
  from "./lib/harness.mjs";

skipUnlessRoot();

const toolsDir = join(repoRoot, "mcp", "tools");
const readJson = (name) => JSON.parse(readFileSync(join(toolsDir, name), "utf8"));
const files = readdirSync(toolsDir).filter((f) => f.endsWith(".json"));
const definitions = files.filter((f) => !f.endsWith(".schema.json")).map(readJson);
const shared = files.filter((f) => f.endsWith(".schema.json"));

// strict: unknown keywords and formats are errors, not ignored (type unions are JSON Schema).
function newAjv() {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  for (const f of shared) {
    const { $comment, ...schema } = readJson(f);
    ajv.addSchema(schema, f);
  }
  return ajv;
}

// What the server serves: shared schemas put in place of {"$ref": "<file>.schema.json"}.
function inlined(node) {
  if (Array.isArray(node)) return node.map(inlined);
  if (node === null || typeof node !== "object") return node;
  if (typeof node.$ref === "string" && node.$ref.endsWith(".schema.json")) {
    const { $comment, ...schema } = readJson(node.$ref);
    return inlined(schema);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inlined(v)]));
}

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const client = await connectStdio({ stateDir });
const { tools } = await client.listTools();

test("every tool has a definition file and every file a tool", () => {
  assert.deepEqual(
    tools.map((t) => t.name).sort(),
    definitions.map((d) => d.name).sort(),
  );
});

test("the served definitions are the files, shared schemas in place, examples left out", () => {
  for (const served of tools) {
    const { examples, ...file } = definitions.find((d) => d.name === served.name);
    assert.deepEqual(served, inlined(file), `${served.name}: tools/list differs from its file`);
  }
});

test("every served schema is a valid JSON Schema 2020-12", () => {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  for (const t of tools) {
    for (const key of ["inputSchema", "outputSchema"]) {
      assert.ok(ajv.validateSchema(t[key]), `${t.name}.${key}: ${ajv.errorsText(ajv.errors)}`);
      assert.equal(t[key].type, "object", `${t.name}.${key} must describe an object`);
      ajv.compile(t[key]); // strict mode: unknown keywords and bad $refs throw here
    }
  }
});

test("every example matches its tool's schemas", () => {
  const ajv = newAjv();
  for (const d of definitions) {
    assert.ok(Array.isArray(d.examples) && d.examples.length > 0, `${d.name} has no examples`);
    const input = ajv.compile(d.inputSchema);
    const output = ajv.compile(d.outputSchema);
    d.examples.forEach((ex, i) => {
      assert.ok(input(ex.arguments), `${d.name} example ${i} arguments: ${ajv.errorsText(input.errors)}`);
      if ("result" in ex)
        assert.ok(output(ex.result), `${d.name} example ${i} result: ${ajv.errorsText(output.errors)}`);
    });
  }
});

test("the schemas catch what they must: a wrong type, a missing or unknown argument", () => {
  const ajv = newAjv();
  const exec = ajv.compile(definitions.find((d) => d.name === "sandbox_exec").inputSchema);
  assert.ok(!exec({ command: "true" }), "id is required");
  assert.ok(!exec({ id: "a", timeout_seconds: "10" }), "timeout_seconds is an integer");
  assert.ok(!exec({ id: "a", colour: "blue" }), "unknown arguments are refused");
  const list = ajv.compile(definitions.find((d) => d.name === "sandbox_list").outputSchema);
  assert.ok(!list({ sandboxes: [{ id: "x" }] }), "a sandbox object has required fields");
});

test("the examples' arguments are accepted by the real tools", async () => {
  // Calls that need no repository, remote or earlier state: they must succeed as given.
  const created = await callTool(client, "sandbox_create", { name: "fix-tests", ttl_seconds: 3600 });
  assert.equal(created.state, "running");
  for (const name of ["sandbox_write_file", "sandbox_exec", "sandbox_list", "snapshot_list",
    "sandbox_list_dir", "sandbox_stat", "sandbox_make_dir", "sandbox_move", "sandbox_remove",
    "sandbox_metrics"]) {
    for (const ex of definitions.find((d) => d.name === name).examples) {
      if (name === "sandbox_exec" && ex.arguments.argv) continue; // the example runs make
      await callTool(client, name, ex.arguments);
    }
  }
  await callTool(client, "sandbox_destroy", { id: "fix-tests" });
});
