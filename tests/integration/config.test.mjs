// The configuration file (`warren serve --config FILE`): the shipped default file
// (tools/package/warren.conf) documents exactly the options of `warren --help`; with its
// defaults uncommented the server starts; the file's settings apply and command-line
// flags override them; a bad file stops the server with the file's name and line and
// writes nothing.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { onCleanup, repoRoot, skipUnlessRoot, tempStateDir, tempWorkDir, test, waitFor, warrenBinary } from "./lib/harness.mjs";

skipUnlessRoot();

const shipped = readFileSync(join(repoRoot, "tools/package/warren.conf"), "utf8");
const work = tempWorkDir("warren-it-config-");

/** Writes text to a new file in the work dir and returns its path. */
let files = 0;
function confFile(text) {
  const path = join(work, `warren-${++files}.conf`);
  writeFileSync(path, text);
  return path;
}

/** Runs warren serve with args until it listens (returns {url, stderr}) or exits (returns {code, stderr}). */
async function serve(args, env = {}) {
  const child = spawn(warrenBinary(), ["serve", ...args], {
    env: { ...process.env, WARREN_TOKEN: "", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  onCleanup(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const result = await waitFor("warren to listen or exit", () => {
    const url = stderr.match(/listening on (http:\/\/\S+\/mcp)/)?.[1];
    if (url) return { url, child };
    if (child.exitCode !== null) return { code: child.exitCode };
    return null;
  }, 20_000);
  if (result.url) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  return { ...result, stderr };
}

test("the shipped file documents every option of --help, and nothing else", () => {
  const help = spawnSync(warrenBinary(), ["--help"], { encoding: "utf8" }).stdout;
  const options = [...help.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((m) => m[1]).filter((o) => o !== "config");
  const keys = [...shipped.matchAll(/^# ([a-z0-9-]+) = \S/gm)].map((m) => m[1]);
  assert.ok(options.length >= 14, `few options in --help: ${options}`);
  assert.deepEqual([...new Set(keys)].sort(), options.sort());
});

test("the shipped defaults, uncommented, start the server; flags override the file", async () => {
  const stateDir = tempStateDir();
  // Every "# key = value" line becomes a setting, but for the keys that have no default
  // (their lines show an example) and the state directory, which is the test's.
  const text = shipped.replace(/^# ([a-z-]+) = (.*)$/gm, (line, key, value) =>
    ["pool", "insecure-registry", "egress-hosts"].includes(key) ? line
      : key === "state-dir" ? `state-dir = ${stateDir}` : `${key} = ${value}`);
  assert.match(text, /^listen = 127\.0\.0\.1:8080$/m);
  const conf = confFile(text);
  // --listen on the command line wins over the file's 127.0.0.1:8080.
  const r = await serve(["--config", conf, "--listen", "127.0.0.1:0", "--backend", "jail"]);
  assert.ok(r.url, `warren did not start:\n${r.stderr}`);
  assert.doesNotMatch(r.url, /:8080\//);
  // The file's state-dir applied: the token was generated there.
  assert.match(readFileSync(join(stateDir, "token"), "utf8"), /^[0-9a-f]{64}$/);
  assert.match(r.stderr, new RegExp(`state directory ${stateDir}, backend jail`));
});

test("the file's settings apply (log-json, log-level) and a flag overrides one", async () => {
  const stateDir = tempStateDir();
  const conf = confFile(`listen = 127.0.0.1:0\nstate-dir = ${stateDir}\nbackend = jail\nlog-json = true\nlog-level = error\n`);
  // The URL line is printed for scripts as it is; log lines follow log-json and log-level.
  const logLines = (stderr) => stderr.trim().split("\n").filter((l) => l && !/^warren: listening on/.test(l));
  const quiet = await serve(["--config", conf]);
  assert.ok(quiet.url, quiet.stderr);
  assert.deepEqual(logLines(quiet.stderr), [], "log-level = error still logged");
  const loud = await serve(["--config", conf, "--log-level", "info"]);
  assert.ok(loud.url, loud.stderr);
  const lines = logLines(loud.stderr).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.level === "info" && l.msg.startsWith(`state directory ${stateDir}`)), loud.stderr);
});

test("bad files stop the server, name the file and line, and write nothing", async () => {
  const stateDir = join(work, "never-made");
  const cases = [
    [`state-dir = ${stateDir}\nmax-disk-mib = 12\n`, ":2: max-disk-mib must be a number of MiB from 64"],
    [`state-dir = ${stateDir}\n\nbogus = 1\n`, ":3: unknown key 'bogus'"],
    [`state-dir = ${stateDir}\nlisten = 127.0.0.1:0\nlisten = 127.0.0.1:1\n`, ":3: 'listen' is set again (first on line 2)"],
    [`state-dir = ${stateDir}\nlisten 127.0.0.1:0\n`, ":2: expected 'key = value'"],
    [`state-dir = ${stateDir}\nlog-json = yes\n`, ":2: log-json must be true or false, not 'yes'"],
    [`state-dir = ${stateDir}\nauth = password\n`, ":2: auth must be token or none, not 'password'"],
    [`state-dir = ${stateDir}\nidle-stop-seconds = -5\n`, ":2: idle-stop-seconds must be a number of seconds"],
  ];
  for (const [text, message] of cases) {
    const conf = confFile(text);
    const r = await serve(["--config", conf]);
    assert.equal(r.code, 2, `accepted:\n${text}\n${r.stderr}`);
    assert.ok(r.stderr.includes(`warren: ${conf}${message}`), `message for\n${text}:\n${r.stderr}`);
    assert.ok(!existsSync(stateDir), "a bad file still made the state directory");
  }
  const missing = await serve(["--config", join(work, "absent.conf")]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /warren: reading .*absent\.conf: No such file or directory/);
  // A repeatable key may repeat; a bad pool spec is the server's own error, not the parser's.
  const pools = await serve(["--config", confFile(`state-dir = ${stateDir}\npool = host=0\npool = host=0\n`), "--backend", "jail", "--listen", "127.0.0.1:0"]);
  assert.ok(!/set again/.test(pools.stderr), pools.stderr);
});
