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
  callToolError,
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
  await page.getByRole("link", { name: sbName, exact: true }).click();
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
  await page.getByRole("button", { name: "greeting.txt", exact: true }).click();
  const editor = page.getByLabel("file contents");
  await editor.waitFor();
  assert.equal(await editor.inputValue(), "hello\n");
  await editor.fill("hello from the browser\n");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved").waitFor();
  page.once("dialog", (d) => d.accept("notes"));
  await page.getByRole("button", { name: "New folder" }).click();
  await page.getByRole("button", { name: "📁 notes", exact: true }).waitFor();
  await page.locator('input[type="file"]').setInputFiles({ name: "upload.bin", mimeType: "application/octet-stream", buffer: Buffer.from([0, 1, 2, 255]) });
  await page.getByText("Uploaded upload.bin").waitFor();
  await page.getByRole("button", { name: "upload.bin", exact: true }).waitFor();
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
  await page.getByRole("spinbutton", { name: "Port" }).fill("8000");
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

test("activity and snapshots: snapshot, fork, snapshot the fork, fork again; the grandchild sees the whole tree", async () => {
  await page.getByRole("tab", { name: "Activity" }).click();
  await page.getByRole("cell", { name: "created" }).first().waitFor();
  // Every tool call on the sandbox, from the UI's own MCP client: the commit made before.
  await page.getByRole("cell", { name: "sandbox_git_commit" }).first().waitFor();
  await page.getByRole("cell", { name: "warren-web" }).first().waitFor();
  await shot("activity");
  await page.getByRole("tab", { name: "Snapshots" }).click();
  await page.getByRole("button", { name: "Take a snapshot" }).click();
  const tree = page.getByRole("list", { name: "snapshots and forks" });
  const fork = tree.getByRole("button", { name: /^fork / });
  await fork.first().waitFor({ timeout: 30_000 });
  const first = (await fork.first().getAttribute("aria-label")).replace(/^fork /, "");
  await fork.first().click();
  // The fork appears under its snapshot, as a link to its own page.
  const child = tree.locator("li.snapnode li.sbnode a").first();
  await child.waitFor({ timeout: 30_000 });
  const childName = await child.innerText();
  // On the fork's page: snapshot it, fork that snapshot.
  await child.click();
  await page.getByRole("heading", { name: new RegExp(childName) }).waitFor();
  await page.getByRole("button", { name: "Take a snapshot" }).click();
  await tree.locator("li.sbnode.self > ul > li.snapnode").first().waitFor({ timeout: 30_000 });
  const second = (await tree.locator("li.sbnode.self > ul > li.snapnode button", { hasText: "Fork" }).first().getAttribute("aria-label")).replace(/^fork /, "");
  await tree.getByRole("button", { name: `fork ${second}`, exact: true }).click();
  const grandchild = tree.locator("li.sbnode.self li.snapnode li.sbnode a").first();
  await grandchild.waitFor({ timeout: 30_000 });
  const grandName = await grandchild.innerText();
  // From the grandchild's page: the root, both snapshots, the fork and itself, nested.
  await grandchild.click();
  await page.getByRole("heading", { name: new RegExp(grandName) }).waitFor();
  await tree.locator("li.sbnode.self").waitFor({ timeout: 20_000 });
  const nested = await tree.evaluate((ul) => {
    const path = [];
    for (let li = ul.querySelector("li.sbnode.self"); li; li = li.parentElement.closest("li"))
      path.unshift((li.querySelector(":scope > strong, :scope > a")?.textContent ?? "").trim());
    return path;
  });
  assert.deepEqual(nested, [sbName, first, childName, second, grandName]);
  // Sizes and times are shown for every snapshot.
  assert.match(await tree.locator("li.snapnode small").first().innerText(), /\d.* · \d+(\.\d)? (B|KiB|MiB|GiB) · \d+ layer/);
  // The same tree through MCP, as an agent sees it.
  const agent = await connectHttp(server.url, token);
  const t = await callTool(agent, "snapshot_list", { sandbox: grandName, tree: true });
  assert.deepEqual(t.sandboxes.map((b) => b.name).sort(), [sbName, childName, grandName].sort());
  assert.deepEqual(t.snapshots.map((x) => x.name).sort(), [first, second].sort());
  const byName = Object.fromEntries(t.snapshots.map((x) => [x.name, x]));
  assert.equal(t.sandboxes.find((b) => b.name === grandName).from_snapshot_id, byName[second].snapshot_id);
  assert.equal(t.sandboxes.find((b) => b.name === childName).from_snapshot_id, byName[first].snapshot_id);
  assert.equal(byName[second].parent_snapshot_id, byName[first].snapshot_id);
  assert.ok(t.snapshots.every((x) => x.size_bytes > 0), JSON.stringify(t.snapshots));
  // Another family is not in it.
  const other = await callTool(agent, "sandbox_create", { name: "unrelated" });
  await callTool(agent, "sandbox_snapshot", { id: other.id, name: "unrelated-snap" });
  const again = await callTool(agent, "snapshot_list", { sandbox: sbName, tree: true });
  assert.ok(!again.snapshots.some((x) => x.name === "unrelated-snap") && !again.sandboxes.some((b) => b.name === "unrelated"));
  assert.match(await callToolError(agent, "snapshot_list", { tree: true }), /needs the sandbox/);
  await callTool(agent, "sandbox_destroy", { id: other.id });
  await callTool(agent, "snapshot_delete", { snapshot: "unrelated-snap" });
  await agent.close();
  await shot("snapshots");
  // Deleting a snapshot something is built on is refused, and the page says why.
  await tree.getByRole("button", { name: `delete snapshot ${first}`, exact: true }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Yes, delete" }).click();
  await tree.getByRole("alert").filter({ hasText: /in use by/ }).waitFor();
  for (const name of [grandName, childName]) {
    const a = await connectHttp(server.url, token);
    await callTool(a, "sandbox_destroy", { id: name });
    await a.close();
  }
  await page.goto(`${base}/#/sandbox/${sbName}`);
  await page.getByRole("heading", { name: new RegExp(sbName) }).waitFor();
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
  // The terminal says its session ended, or the page (told by the event stream) that the
  // sandbox is gone, whichever comes first.
  await page.locator(".termstatus, .error").filter({ hasText: /destroyed|ended|disconnected|closed|connection|exited/ }).first().waitFor();
  await agent.close();
  await page.goto(`${base}/#/sandbox/${sbName}`);
  await page.getByRole("heading", { name: new RegExp(sbName) }).waitFor();
});

// What axe's most basic rules check, computed in the page: every control has an accessible
// name, every image a text alternative, ids are unique, and the text contrasts with its
// background (WCAG AA, 4.5:1) in both colour schemes.
const a11yProblems = () => page.evaluate(() => {
  const problems = [];
  const nameOf = (el) => {
    const by = el.getAttribute("aria-labelledby");
    return (el.getAttribute("aria-label") || (by && by.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? "").join(" ")) ||
      [...(el.labels ?? [])].map((l) => l.textContent).join(" ") || (el.tagName === "INPUT" ? "" : el.textContent) || el.title || el.alt || "").trim();
  };
  const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}.${el.className}: ${el.outerHTML.slice(0, 120)}`;
  for (const el of document.querySelectorAll('button, a[href], input:not([type="hidden"]), select, textarea, [role="tab"], [role="dialog"], dialog'))
    if (!nameOf(el)) problems.push(`no accessible name: ${describe(el)}`);
  for (const img of document.querySelectorAll("img")) if (!img.hasAttribute("alt")) problems.push(`img without alt: ${describe(img)}`);
  for (const svg of document.querySelectorAll("svg[role=img]")) if (!nameOf(svg)) problems.push(`svg image without a name: ${describe(svg)}`);
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) problems.push(`duplicate id ${id}`);
  const rgb = (c) => (c.match(/[\d.]+/g) ?? []).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("main p, main td, main label, main button, main a, main h1, main li, header a, header button")) {
    if (!el.offsetParent || !el.textContent.trim() || el.closest(".xterm, dialog:not([open])") || el.disabled) continue;
    const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)}: ${describe(el)}`);
  }
  return problems;
});

test("keyboard only: open a sandbox, switch tabs with the arrow keys, cancel and confirm a dialog; names, alt text and contrast in light and dark", async () => {
  const agent = await connectHttp(server.url, token);
  const pidOf = async () => (await callTool(agent, "sandbox_list")).sandboxes.find((s) => s.name === sbName).pid;
  await page.goto(`${base}/#/`);
  await page.getByRole("link", { name: sbName, exact: true }).waitFor();
  assert.deepEqual(await a11yProblems(), [], "the sandboxes view");
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return { tag: el.tagName, role: el.getAttribute("role"), text: el.textContent.trim(), outline: getComputedStyle(el).outlineStyle };
  });
  // Tab through the page to the sandbox's link; focus is visible on the way.
  let f;
  for (let i = 0; i < 100; i++) {
    await page.keyboard.press("Tab");
    f = await focused();
    assert.notEqual(f.outline, "none", `no visible focus on ${JSON.stringify(f)}`);
    if (f.tag === "A" && f.text === sbName) break;
  }
  assert.equal(f.text, sbName, "Tab never reached the sandbox's link");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: new RegExp(sbName) }).waitFor();
  // The terminal takes the keys (Tab completes in the shell); F6 leaves it for the tabs.
  await page.waitForFunction(() => document.activeElement?.classList.contains("xterm-helper-textarea"));
  await page.keyboard.press("F6");
  assert.deepEqual(await focused().then(({ role, text }) => ({ role, text })), { role: "tab", text: "Terminal" });
  await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => location.hash.endsWith("/files") && document.activeElement?.textContent === "Files");
  await page.getByRole("button", { name: "greeting.txt", exact: true }).waitFor();
  assert.deepEqual(await a11yProblems(), [], "the files view");
  // Tab from the tab goes into its panel; Enter on a file's button opens it.
  for (let i = 0; i < 20 && (await focused()).text !== "greeting.txt"; i++) await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.getByLabel("file contents").waitFor();
  await page.locator("[role=tab][aria-selected=true]").focus();
  await page.keyboard.press("End");
  await page.waitForFunction(() => location.hash.endsWith("/ports") && document.activeElement?.textContent === "Ports");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("ArrowLeft");
  await page.waitForFunction(() => location.hash.endsWith("/snapshots"));
  await page.getByRole("list", { name: "snapshots and forks" }).waitFor();
  assert.deepEqual(await a11yProblems(), [], "the snapshots view");
  // A confirmation by keyboard: Escape cancels (focus returns), Enter confirms.
  const before = await pidOf();
  for (let i = 0; i < 30 && (await focused()).text !== "Restart"; i++) await page.keyboard.press("Shift+Tab");
  assert.equal((await focused()).text, "Restart");
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  assert.equal((await focused()).text, "Yes, restart", "the dialog's action has the focus");
  assert.deepEqual(await a11yProblems(), [], "the confirmation dialog");
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "detached" });
  assert.equal((await focused()).text, "Restart", "focus went back to the button");
  assert.equal(await pidOf(), before, "Escape restarted the sandbox");
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor({ state: "detached" });
  for (let i = 0; i < 100 && (await pidOf()) === before; i++) await page.waitForTimeout(100);
  assert.notEqual(await pidOf(), before, "Enter did not restart the sandbox");
  await page.locator(".sbhead .state", { hasText: "running" }).waitFor();
  // Light and dark, at 1280x800.
  for (const colorScheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme });
    await page.goto(`${base}/#/sandbox/${sbName}/files`);
    await page.getByRole("button", { name: "greeting.txt", exact: true }).waitFor();
    assert.deepEqual(await a11yProblems(), [], `the files view, ${colorScheme}`);
    await shot(`files-${colorScheme}`);
    await page.goto(`${base}/#/`);
    await page.getByRole("link", { name: sbName, exact: true }).waitFor();
    assert.deepEqual(await a11yProblems(), [], `the sandboxes view, ${colorScheme}`);
    await shot(`sandboxes-${colorScheme}`);
  }
  await page.emulateMedia({ colorScheme: null });
  await page.goto(`${base}/#/sandbox/${sbName}`);
  await page.getByRole("heading", { name: new RegExp(sbName) }).waitFor();
  await agent.close();
});

test("restart from the sandbox page, with confirmation: files stay, processes end, it runs again", async () => {
  const agent = await connectHttp(server.url, token);
  const sb = (await callTool(agent, "sandbox_list")).sandboxes.find((s) => s.name === sbName);
  await callTool(agent, "sandbox_exec", { id: sb.id, command: "echo kept > restart.txt; (setsid sleep 4321 >/dev/null 2>&1 &); echo ok" });
  const sleeping = async () => Number((await callTool(agent, "sandbox_exec", { id: sb.id,
    command: "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '[s]leep 4321' || true" })).stdout.trim());
  assert.equal(await sleeping(), 1);
  // Cancel first: nothing happens.
  await page.getByRole("button", { name: "Restart", exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByText(/every process in it ends/).waitFor();
  await shot("restart-confirm");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  assert.equal(await sleeping(), 1, "cancel restarted the sandbox");
  await page.getByRole("button", { name: "Restart", exact: true }).click();
  await dialog.getByRole("button", { name: "Yes, restart" }).click();
  let after;
  for (let i = 0; i < 300; i++) {
    after = (await callTool(agent, "sandbox_list")).sandboxes.find((s) => s.name === sbName);
    if (after.pid !== sb.pid && after.state === "running") break;
    await page.waitForTimeout(100);
  }
  await page.locator(".sbhead .state", { hasText: "running" }).waitFor();
  assert.equal(after.state, "running");
  assert.notEqual(after.pid, sb.pid, "the machine did not boot again");
  assert.equal(await sleeping(), 0, "a process survived the restart");
  assert.equal((await callTool(agent, "sandbox_exec", { id: sb.id, command: "cat restart.txt" })).stdout, "kept\n");
  const { events } = await callTool(agent, "sandbox_events", { id: sb.id });
  assert.ok(events.some((e) => e.kind === "restarted"));
  await agent.close();
});

test("pause and resume, then destroy with confirmation", async () => {
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator(".sbhead .state", { hasText: "paused" }).waitFor();
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator(".sbhead .state", { hasText: "running" }).waitFor();
  await page.getByRole("button", { name: "Destroy", exact: true }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Yes, destroy" }).click();
  await page.getByText("New sandbox").waitFor();
  // The one expected console error: the wrong token's 401 at the start.
  assert.deepEqual(consoleErrors.filter((e) => !/status of 401/.test(e)), []);
});
