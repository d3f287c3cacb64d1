// The web UI in a real browser: Debian's chromium driven by playwright-core. A person
// signs in, creates a sandbox with a repository, works in it (terminal, files, changes,
// snapshots, activity, metrics) and destroys it; the UI's security (sign-in, cookie,
// CSRF, Origin) is probed with plain HTTP. Screenshots of every view go to
// <build>/web-screenshots/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  connectHttp,
  makeGitRepo,
  skip,
  skipUnlessRoot,
  startHttpServer,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
  onCleanup,
} from "./lib/harness.mjs";

skipUnlessRoot();
const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) skip("no /usr/bin/chromium (tools/setup.sh installs it)");
const { chromium } = await import("playwright-core");

const token = "web-test-token-0123456789";
process.env.WARREN_METRICS_INTERVAL_MS = "500"; // the server samples metrics twice a second
const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const server = await startHttpServer({ stateDir, token });
const base = server.url.replace(/\/mcp$/, "");
const shots = join(process.env.WARREN_BUILD_DIR ?? "build", "web-screenshots");
mkdirSync(shots, { recursive: true });
const repo = makeGitRepo({ "README.md": "hello from the repo\n", "src/main.c": "int main(void) { return 0; }\n" });

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
onCleanup(() => browser.close());
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
page.on("pageerror", (e) => consoleErrors.push(String(e)));
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });

test("without signing in: the page asks for the token; /mcp, events and a foreign Origin are refused", async () => {
  const r = await fetch(`${base}/mcp`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  assert.equal(r.status, 401);
  assert.equal((await fetch(`${base}/api/events`)).status, 401);
  const session = await (await fetch(`${base}/api/session`)).json();
  assert.deepEqual(session, { auth: "token", signed_in: false });
  const wrong = await fetch(`${base}/api/login`, { method: "POST", body: JSON.stringify({ token: "nope" }) });
  assert.equal(wrong.status, 401);
  assert.ok(!wrong.headers.get("set-cookie"));
  assert.doesNotMatch(await wrong.text(), /web-test-token/);
  const foreign = await fetch(`${base}/api/login`, { method: "POST", headers: { Origin: "http://evil.example" }, body: JSON.stringify({ token }) });
  assert.equal(foreign.status, 403);

  await page.goto(base);
  await page.getByLabel("Server token").waitFor();
  await shot("signin");
  await page.getByLabel("Server token").fill("wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("not this server's").waitFor();
});

test("sign in: an HttpOnly SameSite=Strict cookie; state changes need the CSRF token", async () => {
  await page.getByLabel("Server token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("New sandbox").waitFor();
  const [cookie] = await context.cookies();
  assert.equal(cookie.name, "warren_session");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  // The cookie alone does not change state: a POST without the CSRF header is refused.
  const r = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { Cookie: `warren_session=${cookie.value}`, "Content-Type": "application/json", Origin: base },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }),
  });
  assert.equal(r.status, 403);
  await shot("sandboxes-empty");
});

let sbName = "web-demo";
test("create a sandbox with a repository from the form; it shows live in the table", async () => {
  await page.getByText("New sandbox").click();
  await page.getByLabel("Name").fill(sbName);
  await page.getByLabel("Repository (host path)").fill(repo);
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: new RegExp(sbName) }).waitFor();
  // A sandbox made by another client appears in the table without a reload.
  await page.goto(`${base}/#/`);
  const agent = await connectHttp(server.url, token);
  await callTool(agent, "sandbox_create", { name: "from-an-agent" });
  await page.getByRole("link", { name: "from-an-agent" }).waitFor({ timeout: 10_000 });
  await shot("sandboxes");
  await agent.close();
});

const termText = () => page.locator(".xterm-rows").first().innerText();
async function waitForTerm(re, what) {
  const started = Date.now();
  while (Date.now() - started < 20_000) {
    if (re.test(await termText().catch(() => ""))) return;
    await page.waitForTimeout(100);
  }
  assert.fail(`${what}: the terminal shows ${JSON.stringify(await termText())}`);
}

test("terminal: a shell in the sandbox; a reload reattaches to it with its output", async () => {
  await page.getByRole("link", { name: sbName }).click();
  await page.getByRole("tab", { name: "Terminal" }).click();
  await page.locator(".xterm").first().waitFor();
  await page.locator(".xterm-helper-textarea").first().focus();
  await page.keyboard.type("echo hello > greeting.txt; echo done-$((6*7)); tput cols\n");
  await waitForTerm(/done-42/, "the command ran");
  await shot("terminal");
  await page.reload();
  await page.locator(".xterm").first().waitFor();
  await waitForTerm(/done-42/, "the reattached terminal shows the earlier output");
  await shot("terminal-reattached");
  await page.getByText("reattached").waitFor();
  // The same shell: its history has the command.
  await page.locator(".xterm-helper-textarea").first().focus();
  await page.keyboard.type("history | tail -n 3; cat greeting.txt\n");
  await waitForTerm(/echo hello > greeting.txt[\s\S]*hello/, "the same shell");
});

// A WebSocket opened by the page (so it carries the cookie and the Origin), driven by a
// script: the messages it got, and how it closed.
async function wsSession(path, steps) {
  return page.evaluate(async ({ path, steps }) => {
    const ws = new WebSocket(`ws://${location.host}${path}`);
    ws.binaryType = "arraybuffer";
    const got = { texts: [], bytes: 0, closed: null };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") got.texts.push(JSON.parse(e.data));
      else {
        got.bytes += e.data.byteLength;
        ws.send(JSON.stringify({ type: "ack", bytes: e.data.byteLength }));
      }
    };
    const closed = new Promise((r) => (ws.onclose = (e) => r((got.closed = { code: e.code, reason: e.reason }))));
    await new Promise((r) => { ws.onopen = r; ws.onerror = r; });
    for (const s of steps) {
      if (s.send) ws.send(typeof s.send === "string" ? s.send : new TextEncoder().encode(s.input));
      if (s.input) ws.send(new TextEncoder().encode(s.input));
      if (s.waitBytes) { const t0 = Date.now(); while (got.bytes < s.waitBytes && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 50)); }
      if (s.wait) await new Promise((r) => setTimeout(r, s.wait));
    }
    if (!got.closed) { ws.close(); await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]); }
    return got;
  }, { path, steps });
}
const rssMiB = () => Number(readFileSync(`/proc/${server.process.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

test("terminal protocol: an unknown sandbox, a bad control message, a flood through a bounded pipe", async () => {
  const unknown = await wsSession("/sandboxes/no-such-sandbox/terminal", [{ wait: 500 }]);
  assert.equal(unknown.closed?.code, 4404, JSON.stringify(unknown));
  assert.match(unknown.texts[0]?.message ?? "", /no-such-sandbox/);
  assert.equal(unknown.texts[0]?.gone, true);

  const bad = await wsSession(`/sandboxes/${sbName}/terminal?cols=80&rows=24`, [
    { wait: 500 }, { send: "not json" }, { send: JSON.stringify({ type: "resize", cols: 0, rows: 5 }) }, { wait: 500 },
    { send: JSON.stringify({ type: "close" }) }, { wait: 1000 }]);
  const errors = bad.texts.filter((m) => m.type === "error").map((m) => m.message);
  assert.ok(errors.some((m) => /JSON with a type/.test(m)) && errors.some((m) => /rows and cols/.test(m)), JSON.stringify(bad));
  assert.equal(bad.texts[0].type, "ready");
  assert.equal(bad.closed?.code, 1000, "close ends the session and the socket");

  // 50 MB through the terminal: the browser acknowledges as it draws; warren holds at most a
  // window per terminal, so its memory does not grow with the flood.
  const before = rssMiB();
  const flood = await wsSession(`/sandboxes/${sbName}/terminal?cols=200&rows=50`, [
    { wait: 300 }, { input: "yes | head -c 50000000; echo flood-done\n" }, { waitBytes: 50_000_000 }, { wait: 500 }]);
  const grew = rssMiB() - before;
  console.log(`50 MB through the terminal: ${flood.bytes} bytes arrived; warren's RSS grew ${grew.toFixed(1)} MiB`);
  assert.ok(flood.bytes >= 50_000_000, `only ${flood.bytes} bytes`);
  assert.ok(grew < 48, `warren grew by ${grew} MiB`);
});

test("files: the terminal's file is there; view, edit, save, new folder, upload", async () => {
  await page.getByRole("tab", { name: "Files" }).click();
  await page.getByRole("button", { name: "greeting.txt" }).click();
  const editor = page.getByLabel("file contents");
  await editor.waitFor();
  assert.equal(await editor.inputValue(), "hello\n");
  await editor.fill("hello from the browser\n");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved").waitFor();
  page.once("dialog", (d) => d.accept("notes"));
  await page.getByRole("button", { name: "New folder" }).click();
  await page.getByRole("button", { name: "📁 notes" }).waitFor();
  await page.locator('input[type="file"]').setInputFiles({ name: "upload.bin", mimeType: "application/octet-stream", buffer: Buffer.from([0, 1, 2, 255]) });
  await page.getByText("Uploaded upload.bin").waitFor();
  await page.getByRole("button", { name: "upload.bin" }).waitFor();
  await shot("files");
});

test("changes: the diff against the start commit, then a commit from the form", async () => {
  await page.getByRole("tab", { name: "Changes" }).click();
  await page.getByText("greeting.txt").first().waitFor();
  await page.getByText("+hello from the browser").waitFor();
  await shot("changes");
  await page.getByLabel("Commit message").fill("Greeting from the web UI");
  await page.getByRole("button", { name: /Commit to warren\// }).click();
  await page.getByText(/Committed [0-9a-f]{12} on warren\/web-demo/).waitFor();
});

test("metrics: memory, CPU and disk charts from the server's samples", async () => {
  await page.getByRole("tab", { name: "Metrics" }).click();
  await page.locator("figure.chart svg").first().waitFor({ timeout: 20_000 });
  await shot("metrics");
});

test("ports: a server inside opens in a new tab through warren, in an origin of its own; links are capabilities", async () => {
  const agent = await connectHttp(server.url, token);
  const sb = (await callTool(agent, "sandbox_list")).sandboxes.find((s) => s.name === sbName);
  await callTool(agent, "sandbox_exec", { id: sb.id,
    command: "setsid python3 -m http.server 8000 --bind 127.0.0.1 >/tmp/http.log 2>&1 < /dev/null & sleep 1; echo started" });
  await page.getByRole("tab", { name: "Ports" }).click();
  await page.getByLabel("Port").fill("8000");
  const [tab] = await Promise.all([context.waitForEvent("page"), page.getByRole("button", { name: "Open in a new tab" }).click()]);
  await tab.waitForLoadState();
  await tab.getByText("greeting.txt").waitFor();
  const url = tab.url();
  assert.match(url, new RegExp(`/sandboxes/${sb.id}/ports/8000/[0-9a-f]{32}/$`));
  await tab.screenshot({ path: join(shots, "port.png") });
  // The page's origin is opaque: it cannot read warren's API with the sign-in.
  const probe = await tab.evaluate(async () => {
    try { return (await fetch("/api/session")).status; } catch (e) { return String(e); }
  });
  assert.notEqual(probe, 200, "a port's page reached warren's API");
  const r = await fetch(`${base}${new URL(url).pathname}greeting.txt`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-security-policy") ?? "", /sandbox/);
  assert.equal(await r.text(), "hello from the browser\n");
  // Without the link's token, or for another port: refused.
  assert.equal((await fetch(`${base}/sandboxes/${sb.id}/ports/8000/`)).status, 403);
  assert.equal((await fetch(`${base}${new URL(url).pathname.replace("/8000/", "/8001/")}`)).status, 403);
  await tab.close();
  await agent.close();
});

test("activity and snapshots: snapshot, fork, see the fork in the tree", async () => {
  await page.getByRole("tab", { name: "Activity" }).click();
  await page.getByRole("cell", { name: "created" }).first().waitFor();
  // Every tool call on the sandbox, from the UI's own MCP client: the commit made before.
  await page.getByRole("cell", { name: "sandbox_git_commit" }).first().waitFor();
  await page.getByRole("cell", { name: "warren-web" }).first().waitFor();
  await shot("activity");
  await page.getByRole("tab", { name: "Snapshots" }).click();
  await page.getByRole("button", { name: "Take a snapshot" }).click();
  await page.getByRole("button", { name: "Fork" }).waitFor();
  await page.getByRole("button", { name: "Fork" }).click();
  await page.getByText("↳ fork").waitFor({ timeout: 20_000 });
  await shot("snapshots");
});

test("a sandbox destroyed while its terminal is open: the terminal says so, nothing is left running", async () => {
  const agent = await connectHttp(server.url, token);
  const doomed = await callTool(agent, "sandbox_create", { name: "doomed" });
  await page.goto(`${base}/#/sandbox/${doomed.id}/terminal`);
  await page.locator(".xterm").first().waitFor();
  await page.locator(".xterm-helper-textarea").first().focus();
  await page.keyboard.type("echo alive-$((1+1))\n");
  await waitForTerm(/alive-2/, "the doomed sandbox's shell");
  await callTool(agent, "sandbox_destroy", { id: doomed.id });
  await page.locator(".termstatus").filter({ hasText: /ended|disconnected|closed|connection/ }).first().waitFor();
  await agent.close();
  await page.goto(`${base}/#/sandbox/${sbName}`);
  await page.getByRole("heading", { name: new RegExp(sbName) }).waitFor();
});

test("pause and resume, then destroy with confirmation", async () => {
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator(".sbhead .state", { hasText: "paused" }).waitFor();
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator(".sbhead .state", { hasText: "running" }).waitFor();
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Destroy" }).click();
  await page.getByText("New sandbox").waitFor();
  // The one expected console error: the wrong token's 401 at the start.
  assert.deepEqual(consoleErrors.filter((e) => !/status of 401/.test(e)), []);
});
