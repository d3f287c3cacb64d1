// A stand-in for Cloud Hypervisor's REST API, built from the published OpenAPI description
// (shared/spec/cloud-hypervisor.yaml, copied into the repository's test data or found at
// $WARREN_CH_SPEC). Cloud Hypervisor cannot run on CI machines (no KVM, no binary), so
// warren's CH driver is checked against this instead. It is NOT Cloud Hypervisor: it
// routes exactly the spec's paths and methods, validates every request body against the
// operation's requestBody schema, answers with the real server's framing (written raw on
// the socket: `HTTP/1.1 204 \r\n`, no reason phrase, no Content-Length on 204, 200 with
// Content-Length 0 from vmm.shutdown, errors as a JSON array of strings), keeps a small VM
// state machine, and records every request.
//
// Where the real server departs from the spec (spec/README.md and CH's
// vmm/src/api/http/mod.rs), the stand-in does what the server does: an unknown path is
// 404 ["Not Found"]; a method other than GET/PUT is 400 with an empty body; a known path with
// the wrong method, a body sent to an action endpoint, or a missing body is
// 400 ["Bad Request"]; a body that does not deserialize is 400 ["Failed to deserialize
// JSON", ...]; a VM in the wrong state is 500 (never 405).
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import Ajv from "ajv";
import YAML from "yaml";

const INT_FORMATS = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [-(2 ** 63), 2 ** 63],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 2 ** 32 - 1],
};

/** Loads the spec: { doc, routes: Map(path -> { get?: op, put?: op }), ajv, validate(name, v) } */
export function loadSpec(specPath, { strictProperties = true } = {}) {
  const doc = YAML.parse(readFileSync(specPath, "utf8"));
  const routes = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    const methods = {};
    for (const m of ["get", "put", "post", "patch", "delete"]) {
      if (!item[m]) continue;
      const ref = item[m].requestBody?.content?.["application/json"]?.schema?.$ref ?? null;
      methods[m] = { schema: ref ? ref.split("/").pop() : null, required: !!item[m].requestBody?.required };
    }
    routes.set(path, methods);
  }
  // OpenAPI 3.0 schemas are JSON Schema with extras (nullable, int formats): strict:false
  // tolerates the extras, the formats are checked as the integer ranges they name.
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const [name, [min, max]] of Object.entries(INT_FORMATS))
    ajv.addFormat(name, { type: "number", validate: (n) => Number.isInteger(n) && n >= min && n <= max });
  const schemas = structuredClone(doc.components.schemas);
  // The spec leaves additionalProperties open; CH's serde structs would silently drop a
  // misspelled field, so the stand-in refuses unknown ones to catch typos.
  if (strictProperties)
    for (const s of Object.values(schemas))
      if (s.type === "object" && s.properties && s.additionalProperties === undefined) s.additionalProperties = false;
  ajv.addSchema({ $id: "ch", components: { schemas } });
  const validators = new Map();
  const validate = (name, value) => {
    if (!validators.has(name)) validators.set(name, ajv.getSchema(`ch#/components/schemas/${name}`));
    const v = validators.get(name);
    if (!v) throw new Error(`no schema ${name} in the spec`);
    return v(value) ? [] : v.errors.map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  };
  return { doc, routes, ajv, validate };
}

function rawResponse(status, body) {
  let head = `HTTP/1.1 ${status} \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n`;
  if (status !== 204) {
    const bytes = Buffer.from(body ?? "");
    head += `Content-Type: application/json\r\nContent-Length: ${bytes.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head), bytes]);
  }
  return Buffer.from(head + "\r\n");
}

const errorBody = (messages) => JSON.stringify(messages);

/** Parses as many whole requests as buf holds. Returns { requests, rest }. */
function parseRequests(buf) {
  const requests = [];
  for (;;) {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) break;
    const head = buf.subarray(0, end).toString("latin1");
    const [requestLine, ...lines] = head.split("\r\n");
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = headers["content-length"] !== undefined ? Number(headers["content-length"]) : 0;
    if (buf.length < end + 4 + length) break;
    const body = buf.subarray(end + 4, end + 4 + length).toString("utf8");
    const [method, target, version] = requestLine.split(" ");
    requests.push({ method, target, version, headers, body, hasBody: length > 0 });
    buf = buf.subarray(end + 4 + length);
  }
  return { requests, rest: buf };
}

/**
 * Starts the stand-in on a unix socket. Options: failAt { "vm.boot": ["msg", ...] } answers
 * that call with 500 and the messages; dribble writes every reply one byte at a time.
 * Returns { requests, state(), failAt(name, messages), close() }.
 */
export async function startStandin({ socketPath, specPath, failAt = {}, dribble = false } = {}) {
  const spec = loadSpec(specPath);
  const requests = [];
  const failures = { ...failAt };
  const vm = { state: null, config: null, balloon: 0 };
  const sockets = new Set();

  const handle = (req) => {
    const record = { ...req, op: null, problems: [] };
    requests.push(record);
    const url = new URL(req.target, "http://localhost");
    if (req.headers["transfer-encoding"]) record.problems.push("Transfer-Encoding sent (CH reads Content-Length only)");
    if (req.method === "PUT" && req.headers["content-length"] === undefined)
      record.problems.push("PUT without Content-Length");
    if (!url.pathname.startsWith("/api/v1/")) return [404, errorBody(["Not Found"])];
    const path = url.pathname.slice("/api/v1".length);
    const route = spec.routes.get(path);
    if (!route) return [404, errorBody(["Not Found"])];
    record.op = path.slice(1);
    if (req.method !== "GET" && req.method !== "PUT") return [400, ""];
    const op = route[req.method.toLowerCase()];
    if (!op) {
      record.problems.push(`${req.method} is not a method of ${path} in the spec`);
      return [400, errorBody(["Bad Request"])];
    }
    if (!op.schema && req.hasBody) {
      record.problems.push(`${path} takes no body (CH answers 400)`);
      return [400, errorBody(["Bad Request"])];
    }
    if (op.schema && !req.hasBody) {
      record.problems.push(`${path} needs a ${op.schema} body`);
      return [400, errorBody(["Bad Request"])];
    }
    let body = null;
    if (op.schema) {
      try {
        body = JSON.parse(req.body);
      } catch (e) {
        record.problems.push(`body is not JSON: ${e.message}`);
        return [400, errorBody(["Failed to deserialize JSON", e.message])];
      }
      const errors = spec.validate(op.schema, body);
      if (errors.length) {
        record.problems.push(...errors.map((e) => `${op.schema}: ${e}`));
        return [400, errorBody(["Failed to deserialize JSON", ...errors])];
      }
      record.json = body;
    }
    if (failures[record.op]) return [500, errorBody(failures[record.op])];
    return transition(record.op, body);
  };

  const notCreated = (what) => [404, errorBody(["Error from API", what, "VM is not created"])];
  const badState = (what, to) => [
    500,
    errorBody(["Error from API", what, `Invalid VM state transition: ${vm.state} to ${to}`]),
  ];
  const moveTo = (from, to, what) => {
    if (!vm.state) return notCreated(what);
    if (vm.state !== from) return badState(what, to);
    vm.state = to;
    return [204, null];
  };

  function transition(op, body) {
    switch (op) {
      case "vmm.ping":
        return [200, JSON.stringify({ build_version: "v53.0-standin", version: "53.0.0", pid: process.pid, features: [] })];
      case "vm.create":
        if (vm.state) return [500, errorBody(["Error from API", "The VM could not be created", "VM is already created"])];
        Object.assign(vm, { state: "Created", config: body, balloon: body.balloon?.size ?? 0 });
        return [204, null];
      case "vm.boot":
        return moveTo("Created", "Running", "The VM could not boot");
      case "vm.info":
        if (!vm.state) return notCreated("The VM information could not be retrieved");
        return [200, JSON.stringify({ config: vm.config, state: vm.state, memory_actual_size: (vm.config.memory?.size ?? 0) - vm.balloon })];
      case "vm.pause":
        return moveTo("Running", "Paused", "The VM could not be paused");
      case "vm.resume":
        return moveTo("Paused", "Running", "The VM could not be resumed");
      case "vm.resize":
        if (!vm.state) return notCreated("The VM could not be resized");
        if (body.desired_balloon !== undefined) {
          if (!vm.config.balloon) return [500, errorBody(["Error from API", "The VM could not be resized", "No balloon device"])];
          if (body.desired_balloon >= vm.config.memory.size) return [500, errorBody(["Error from API", "The VM could not be resized", "Balloon size must be less than RAM"])];
          vm.balloon = body.desired_balloon;
        }
        return [204, null];
      case "vm.snapshot":
        if (!vm.state) return notCreated("The VM could not be snapshotted");
        if (vm.state !== "Paused") return [500, errorBody(["Error from API", "The VM could not be snapshotted", "VM is not paused"])];
        if (!String(body.destination_url).startsWith("file://")) return [500, errorBody(["Error from API", "The VM could not be snapshotted", "Unsupported URL"])];
        return [204, null];
      case "vm.restore":
        if (vm.state) return [500, errorBody(["Error from API", "The VM could not be restored", "VM is already created"])];
        Object.assign(vm, { state: "Paused", config: { payload: {}, memory: { size: 0 } } });
        return [204, null];
      case "vm.shutdown":
        return moveTo("Running", "Shutdown", "The VM could not shut down");
      case "vmm.shutdown":
        return [200, ""]; // the spec says 204; the server answers 200 with Content-Length 0
      default:
        return [500, errorBody(["Error from API", `${op} is not modelled by the stand-in`])];
    }
  }

  const writeReply = async (socket, bytes) => {
    if (!dribble) return socket.write(bytes);
    for (const b of bytes) {
      socket.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.on("data", (data) => {
      const parsed = parseRequests(Buffer.concat([buf, data]));
      buf = parsed.rest;
      for (const req of parsed.requests) {
        const [status, body] = handle(req);
        const last = requests[requests.length - 1];
        last.status = status;
        chain = chain.then(() => writeReply(socket, rawResponse(status, body)));
      }
    });
  });
  rmSync(socketPath, { force: true });
  await new Promise((resolve, reject) => server.listen(socketPath, resolve).once("error", reject));
  return {
    requests,
    spec,
    state: () => vm.state,
    failAt: (name, messages) => (failures[name] = messages),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
