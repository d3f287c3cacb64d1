// GET /metrics: the Prometheus text exposition behind the bearer token, parsed by a
// Prometheus text-format parser from npm, with the counters moving by the right amounts as
// tools run on a real jail sandbox through /mcp.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import parsePrometheusTextFormat from "parse-prometheus-text-format";

import {
  callTool,
  connectHttp,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const token = "metrics-test-token-0123456789";
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const server = await startHttpServer({ stateDir, token });
const metricsUrl = server.url.replace(/\/mcp$/, "/metrics");

async function scrape() {
  const res = await fetch(metricsUrl, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])) };
}

// The value of the series of `name` whose labels include `labels` (0 when absent: a
// counter's series appears on first use).
function value(m, name, labels = {}) {
  const f = m.families.get(name);
  assert.notEqual(f?.type, "HISTOGRAM", `${name}: use histogram()`);
  const matches = (l = {}) => Object.entries(labels).every(([k, v]) => l[k] === v);
  const s = f?.metrics.find((x) => matches(x.labels));
  return s ? Number(s.value) : 0;
}

// One series of a histogram: {count, sum, buckets}. parse-prometheus-text-format 1.1.1
// folds every series of a histogram into one (its flattenMetrics keeps no labels but le),
// so the series' own lines are cut out of the exposition, their other labels dropped,
// and that single series is parsed.
function histogram(m, name, labels = {}) {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const lines = m.text.split("\n").filter((line) =>
    /^(\w+)(\{|\s)/.test(line) && [`${name}_bucket`, `${name}_sum`, `${name}_count`].includes(line.match(/^\w+/)[0]) &&
    pairs.every((p) => line.includes(p)));
  if (!lines.length) return { count: 0, sum: 0, buckets: {} };
  const stripped = lines.map((line) => {
    let l = line;
    for (const p of pairs) l = l.replace(new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")},?`), "");
    return l.replace("{}", "").replace(",}", "}");
  });
  const [f] = parsePrometheusTextFormat(`# HELP ${name} x\n# TYPE ${name} histogram\n${stripped.join("\n")}\n`);
  assert.equal(f.type, "HISTOGRAM");
  const s = f.metrics[0];
  return {
    count: Number(s.count),
    sum: Number(s.sum),
    buckets: Object.fromEntries(Object.entries(s.buckets).map(([k, v]) => [k, Number(v)])),
  };
}

test("without the bearer token /metrics is 401; with it, text format 0.0.4", async () => {
  for (const headers of [{}, { Authorization: "Bearer not-the-token-at-all" }]) {
    const res = await fetch(metricsUrl, { headers });
    assert.equal(res.status, 401);
    assert.ok(!(await res.text()).includes("warren_sandboxes"));
  }
  const post = await fetch(metricsUrl, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  assert.equal(post.status, 405);
  const m = await scrape();
  for (const [name, type] of [
    ["warren_sandboxes", "GAUGE"],
    ["warren_sandbox_memory_bytes", "GAUGE"],
    ["warren_balloon_bytes", "GAUGE"],
    ["process_resident_memory_bytes", "GAUGE"],
    ["process_open_fds", "GAUGE"],
    ["warren_http_responses_total", "COUNTER"],
  ])
    assert.equal(m.families.get(name)?.type, type, `${name} in\n${m.text}`);
  for (const state of ["creating", "running", "paused", "stopped", "failed"])
    assert.equal(value(m, "warren_sandboxes", { state, backend: "jail" }), 0);
  // The two refusals above are counted by the listener.
  assert.ok(value(m, "warren_http_responses_total", { code: "401" }) >= 2);
});

test("the process figures match /proc", async () => {
  const pid = server.process.pid;
  const m = await scrape();
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
  const reported = value(m, "process_resident_memory_bytes");
  assert.ok(Math.abs(reported - rss) < rss * 0.25, `resident ${reported} vs VmRSS ${rss}`);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const reportedFds = value(m, "process_open_fds");
  // The scrape's own connection comes and goes around the reading.
  assert.ok(Math.abs(reportedFds - fds) <= 2, `open fds ${reportedFds} vs /proc ${fds}`);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").slice(readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(stat[11]) + Number(stat[12])) / 100; // utime + stime, USER_HZ = 100
  const reportedCpu = value(m, "process_cpu_seconds_total");
  assert.equal(m.families.get("process_cpu_seconds_total").type, "COUNTER");
  assert.ok(reportedCpu >= 0 && Math.abs(reportedCpu - cpu) < 0.5, `cpu ${reportedCpu} s vs /proc ${cpu} s`);
});

test("counters move as tools run: create, exec, write, read, a failure, destroy", async () => {
  const before = await scrape();
  const client = await connectHttp(server.url, token);
  const during = await scrape();
  assert.equal(value(during, "warren_mcp_sessions", { transport: "http" }), 1);

  const sb = await callTool(client, "sandbox_create", { name: "metrics-a" });
  const content = "x".repeat(12345);
  await callTool(client, "sandbox_write_file", { id: sb.id, path: "m.txt", content });
  const read = await callTool(client, "sandbox_read_file", { id: sb.id, path: "m.txt" });
  assert.equal(read.content, content);
  const ran = await callTool(client, "sandbox_exec", { id: sb.id, command: "sleep 0.4; echo done" });
  assert.equal(ran.stdout, "done\n");
  await callTool(client, "sandbox_exec", { id: sb.id, command: "true" });
  // A tool failure (isError) and a create refused (the name is taken).
  const bad = await client.callTool({ name: "sandbox_exec", arguments: { id: "no-such-sandbox", command: "true" } });
  assert.equal(bad.isError, true);
  const taken = await client.callTool({ name: "sandbox_create", arguments: { name: "metrics-a" } });
  assert.equal(taken.isError, true);

  const after = await scrape();
  const delta = (name, labels) => value(after, name, labels) - value(before, name, labels);
  assert.equal(delta("warren_tool_calls_total", { tool: "sandbox_create", outcome: "ok" }), 1);
  assert.equal(delta("warren_tool_calls_total", { tool: "sandbox_create", outcome: "error" }), 1);
  assert.equal(delta("warren_tool_calls_total", { tool: "sandbox_exec", outcome: "ok" }), 2);
  assert.equal(delta("warren_tool_calls_total", { tool: "sandbox_exec", outcome: "error" }), 1);
  assert.equal(delta("warren_tool_calls_total", { tool: "sandbox_write_file", outcome: "ok" }), 1);
  assert.equal(delta("warren_tool_calls_total", { tool: "sandbox_read_file", outcome: "ok" }), 1);
  assert.equal(delta("warren_file_bytes_total", { direction: "write" }), 12345);
  assert.equal(delta("warren_file_bytes_total", { direction: "read" }), 12345);
  assert.equal(delta("warren_execs_total", { outcome: "exited" }), 2);
  assert.equal(delta("warren_sandbox_creates_total", { backend: "jail" }), 1);
  assert.equal(delta("warren_sandbox_create_failures_total", { backend: "jail" }), 1);

  // Latency histograms: the exec histogram saw the 0.4 s sleep.
  const execH = histogram(after, "warren_exec_duration_seconds");
  const execBefore = histogram(before, "warren_exec_duration_seconds");
  assert.equal(execH.count - execBefore.count, 2);
  assert.ok(execH.sum - execBefore.sum >= 0.4, `exec seconds grew by ${execH.sum - execBefore.sum}`);
  assert.equal(execH.buckets["+Inf"], execH.count);
  assert.ok(execH.buckets["0.25"] <= execH.buckets["0.5"] && execH.buckets["0.5"] <= execH.buckets["+Inf"]);
  const callH = histogram(after, "warren_tool_call_duration_seconds", { tool: "sandbox_exec" });
  const callBefore = histogram(before, "warren_tool_call_duration_seconds", { tool: "sandbox_exec" });
  assert.equal(callH.count - callBefore.count, 3);
  assert.ok(callH.sum - callBefore.sum >= 0.4);
  assert.ok(callH.buckets["0.1"] < callH.count, "the 0.4 s call is above the 0.1 s bucket");
  assert.equal(callH.buckets["+Inf"], callH.count);
  // Every family of the exposition parses, histograms included, with its type.
  assert.equal(after.families.get("warren_tool_call_duration_seconds").type, "HISTOGRAM");
  assert.equal(after.families.get("warren_tool_calls_total").type, "COUNTER");

  // Gauges read when scraped: one running jail sandbox holding memory.
  assert.equal(value(after, "warren_sandboxes", { state: "running", backend: "jail" }), 1);
  assert.ok(value(after, "warren_sandbox_memory_bytes", { backend: "jail" }) > 0);

  await callTool(client, "sandbox_destroy", { id: sb.id });
  await client.transport.terminateSession();
  await client.close();
  const end = await scrape();
  assert.equal(value(end, "warren_sandboxes", { state: "running", backend: "jail" }), 0);
  assert.equal(value(end, "warren_mcp_sessions", { transport: "http" }), 0);
  assert.equal(value(end, "warren_tool_calls_total", { tool: "sandbox_destroy", outcome: "ok" }),
    value(before, "warren_tool_calls_total", { tool: "sandbox_destroy", outcome: "ok" }) + 1);
});

test("a cancelled call is counted as cancelled", async () => {
  const client = await connectHttp(server.url, token);
  const sb = await callTool(client, "sandbox_create", { name: "metrics-b" });
  const before = await scrape();
  const abort = new AbortController();
  const call = client.callTool({ name: "sandbox_exec", arguments: { id: sb.id, command: "sleep 30" } },
    undefined, { signal: abort.signal });
  await sleep(700);
  abort.abort();
  await assert.rejects(call);
  let after;
  for (let i = 0; i < 50; i++) {
    after = await scrape();
    if (value(after, "warren_execs_total", { outcome: "cancelled" }) > value(before, "warren_execs_total", { outcome: "cancelled" })) break;
    await sleep(100);
  }
  assert.equal(value(after, "warren_tool_calls_total", { tool: "sandbox_exec", outcome: "cancelled" }) -
    value(before, "warren_tool_calls_total", { tool: "sandbox_exec", outcome: "cancelled" }), 1);
  assert.equal(value(after, "warren_execs_total", { outcome: "cancelled" }) -
    value(before, "warren_execs_total", { outcome: "cancelled" }), 1);
  await callTool(client, "sandbox_destroy", { id: sb.id });
});
