// warren's web UI: sign-in, the sandboxes table, the create form and a page per sandbox
// (terminal, files, changes, snapshots, activity, metrics). Everything it does to
// sandboxes goes through MCP tools (mcp.mjs); live updates come from /api/events.
import { html, render, useEffect, useRef, useState, useCallback } from "vendor/preact-htm";
import { currentCsrf, setCsrf, tool } from "mcp";
import { TerminalTab } from "terminal";

// ---- small helpers ----------------------------------------------------------------------

const fmtBytes = (n) => {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
};
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "–");
const ago = (t) => {
  if (!t) return "–";
  const s = Math.round((Date.parse(t) - Date.now()) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : `${Math.round(a / 3600)} h`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
};
const netText = (n) => (n === true ? "NAT" : n === false || n == null ? "none" : `allow ${n.allow.join(", ") || "(nothing)"}`);

function route() {
  const m = location.hash.match(/^#\/sandbox\/([^/]+)(?:\/(\w+))?/);
  return m ? { page: "sandbox", id: decodeURIComponent(m[1]), tab: m[2] ?? "terminal" } : { page: "list" };
}

// One EventSource for the page: every sandbox event bumps a counter that views watch.
let eventListeners = new Set();
function startEvents() {
  const es = new EventSource("/api/events");
  es.onmessage = (e) => {
    let ev = null;
    try { ev = JSON.parse(e.data); } catch {}
    for (const f of eventListeners) f(ev);
  };
  return es;
}
function useEvents(fn) {
  useEffect(() => {
    eventListeners.add(fn);
    return () => eventListeners.delete(fn);
  }, [fn]);
}

function ErrorLine({ error }) {
  return error ? html`<p class="error" role="alert">${String(error.message ?? error)}</p>` : null;
}

// Confirmation in a modal <dialog>: focus moves into it (to the action, so Enter confirms),
// Escape or Cancel closes it, and focus goes back where it was.
let showConfirm = null;
function confirmDo(text, fn, action = "OK") {
  showConfirm?.({ text, fn, action });
}
function ConfirmHost() {
  const [ask, setAsk] = useState(null);
  const ref = useRef(null);
  const back = useRef(null);
  useEffect(() => { showConfirm = (a) => { back.current = document.activeElement; setAsk(a); }; return () => (showConfirm = null); }, []);
  useEffect(() => { if (ask && ref.current && !ref.current.open) ref.current.showModal(); }, [ask]);
  const close = (ok) => {
    const a = ask;
    if (ref.current?.open) ref.current.close();
    setAsk(null);
    back.current?.focus?.();
    if (ok) a.fn();
  };
  if (!ask) return null;
  return html`<dialog ref=${ref} class="confirm" aria-labelledby="confirm-text" onCancel=${(e) => { e.preventDefault(); close(false); }}>
    <p id="confirm-text">${ask.text}</p>
    <div class="actions"><button type="button" onClick=${() => close(false)}>Cancel</button>
      <button type="button" class="danger" autofocus onClick=${() => close(true)}>${ask.action}</button></div>
  </dialog>`;
}

// ---- sign-in ----------------------------------------------------------------------------------

function SignIn({ onSignedIn }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
    if (!r.ok) {
      setError(r.status === 429 ? "Too many attempts: wait a minute." : "That token is not this server's.");
      return;
    }
    onSignedIn((await r.json()).csrf);
  };
  return html`<main class="signin">
    <h1>warren</h1>
    <form onSubmit=${submit}>
      <label for="token">Server token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" autofocus
        value=${token} onInput=${(e) => setToken(e.target.value)} />
      <p class="hint">The token is in <code>&lt;state-dir&gt;/token</code> (or <code>$WARREN_TOKEN</code>) on the server.</p>
      <button type="submit">Sign in</button>
      <${ErrorLine} error=${error} />
    </form>
  </main>`;
}

// ---- the sandboxes table -------------------------------------------------------------------------

const CREATE_DEFAULTS = { name: "", repo: "", ref: "", image: "", cpus: 1, memory_mib: 512, disk_mib: "", network: "false", allow: "", env: "", ttl_seconds: 0 };

function CreateForm({ onCreated }) {
  const [f, setF] = useState(CREATE_DEFAULTS);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === "number" ? Number(e.target.value) : e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const args = { cpus: f.cpus, memory_mib: f.memory_mib };
      for (const k of ["name", "repo", "ref", "image"]) if (f[k]) args[k] = f[k];
      if (f.disk_mib) args.disk_mib = Number(f.disk_mib);
      if (f.ttl_seconds) args.ttl_seconds = f.ttl_seconds;
      if (f.network === "true") args.network = true;
      if (f.network === "allow") args.network = { allow: f.allow.split(/[\s,]+/).filter(Boolean) };
      if (f.env.trim())
        args.env = Object.fromEntries(f.env.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const sb = await tool("sandbox_create", args);
      setF(CREATE_DEFAULTS);
      onCreated(sb);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<details class="create" open=${false}>
    <summary>New sandbox</summary>
    <form onSubmit=${submit} class="grid">
      <label>Name <input name="name" value=${f.name} onInput=${set("name")} placeholder="generated" /></label>
      <label>Repository (host path) <input name="repo" value=${f.repo} onInput=${set("repo")} placeholder="/home/me/src/app" /></label>
      <label>Ref <input name="ref" value=${f.ref} onInput=${set("ref")} placeholder="HEAD" /></label>
      <label>Image <input name="image" value=${f.image} onInput=${set("image")} placeholder="host" /></label>
      <label>CPUs <input name="cpus" type="number" min="1" max="64" value=${f.cpus} onInput=${set("cpus")} /></label>
      <label>Memory (MiB) <input name="memory_mib" type="number" min="64" value=${f.memory_mib} onInput=${set("memory_mib")} /></label>
      <label>Disk (MiB) <input name="disk_mib" type="number" min="64" value=${f.disk_mib} onInput=${set("disk_mib")} placeholder="server default" /></label>
      <label>TTL (s, 0: none) <input name="ttl_seconds" type="number" min="0" value=${f.ttl_seconds} onInput=${set("ttl_seconds")} /></label>
      <label>Network
        <select name="network" value=${f.network} onChange=${set("network")}>
          <option value="false">none</option><option value="true">NAT (internet)</option><option value="allow">allow-list</option>
        </select></label>
      ${f.network === "allow" && html`<label>Allowed hosts <input name="allow" value=${f.allow} onInput=${set("allow")} placeholder="deb.debian.org *.pythonhosted.org" /></label>`}
      <label class="wide">Environment (KEY=value per line) <textarea name="env" rows="2" value=${f.env} onInput=${set("env")}></textarea></label>
      <div class="wide"><button type="submit" disabled=${busy}>${busy ? "Creating…" : "Create"}</button></div>
      <${ErrorLine} error=${error} />
    </form>
  </details>`;
}

const FIRST_ROWS = 40; // more than 1280x800 or a laptop screen shows

function SandboxList() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [filter, setFilter] = useState("all");
  const [selected, setSelected] = useState(new Set());
  const load = useCallback(async () => {
    try {
      const d = await tool("sandbox_list");
      performance.mark("warren:list-data");
      setData(d);
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);
  // How long the table takes from the list's arrival to the frame that shows it (a
  // performance measure that tools/bench-web.mjs reads): preact runs effects after paint.
  // A long table is drawn a screenful first (what a table's layout costs grows with its
  // rows), the rest in the frame after. "warren:list-render" ends when the first screenful
  // is painted, "warren:list-render-all" when every row is.
  const [shown, setShown] = useState(FIRST_ROWS);
  useEffect(() => {
    if (!data) return;
    const data_mark = performance.getEntriesByName("warren:list-data", "mark").length;
    if (data_mark && !performance.getEntriesByName("warren:list-first", "mark").length) {
      performance.measure("warren:list-render", "warren:list-data");
      performance.mark("warren:list-first");
    }
    if (shown < data.sandboxes.length) {
      setShown(Infinity);
    } else if (data_mark) {
      performance.measure("warren:list-render-all", "warren:list-data");
      performance.clearMarks("warren:list-data");
      performance.clearMarks("warren:list-first");
    }
  }, [data, shown]);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000); // memory and timers move without events
    return () => clearInterval(t);
  }, [load]);
  useEvents(load);
  const rows = (data?.sandboxes ?? []).filter((s) => filter === "all" || s.state === filter);
  const toggle = (id) => {
    const n = new Set(selected);
    n.has(id) ? n.delete(id) : n.add(id);
    setSelected(n);
  };
  const bulk = async (what) => {
    const ids = [...selected];
    const run = async () => {
      for (const id of ids) {
        try { await tool(what, { id }); } catch (e) { setError(e); }
      }
      setSelected(new Set());
      load();
    };
    if (what === "sandbox_destroy") confirmDo(`Destroy ${ids.length} sandbox(es)? Their files are deleted.`, run, "Yes, destroy");
    else run();
  };
  return html`<main>
    <${CreateForm} onCreated=${(sb) => { load(); location.hash = `#/sandbox/${sb.id}`; }} />
    <div class="toolbar">
      <label>State <select value=${filter} onChange=${(e) => setFilter(e.target.value)} aria-label="filter by state">
        ${["all", "running", "paused", "stopped", "failed", "creating"].map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <span class="grow"></span>
      <button disabled=${!selected.size} onClick=${() => bulk("sandbox_pause")}>Pause</button>
      <button disabled=${!selected.size} onClick=${() => bulk("sandbox_resume")}>Resume</button>
      <button class="danger" disabled=${!selected.size} onClick=${() => bulk("sandbox_destroy")}>Destroy</button>
    </div>
    <${ErrorLine} error=${error} />
    <table class="sandboxes">
      <thead><tr><th></th><th>Name</th><th>State</th><th>Backend</th><th>Image</th><th>Repository</th><th>CPUs</th>
        <th>Memory used / configured</th><th>Balloon</th><th>Disk</th><th>Network</th><th>Idle pause</th><th>TTL</th></tr></thead>
      <tbody>
        ${rows.slice(0, shown).map((s) => html`<tr key=${s.id} class=${`state-${s.state}`}>
          <td><input type="checkbox" aria-label=${`select ${s.name}`} checked=${selected.has(s.id)} onChange=${() => toggle(s.id)} /></td>
          <td><a href=${`#/sandbox/${s.id}`}>${s.name}</a></td>
          <td><span class="state">${s.state}</span></td>
          <td>${s.backend}</td><td>${s.image}</td>
          <td>${s.repo ? html`${s.repo} <code>${(s.commit ?? "").slice(0, 8)}</code>` : "–"}</td>
          <td>${s.cpus}</td>
          <td>${fmtBytes(s.memory?.usage_bytes)} / ${s.memory?.configured_mib} MiB</td>
          <td>${fmtBytes(s.memory?.balloon_bytes)}</td>
          <td>${s.disk_mib ? `${fmtBytes(s.disk_used_bytes)} / ${s.disk_mib} MiB` : "–"}</td>
          <td>${netText(s.network)}</td>
          <td>${ago(s.idle_policy?.pause_at)}</td>
          <td>${s.expires_at ? ago(s.expires_at) : "–"}</td>
        </tr>`)}
        ${data && !rows.length && html`<tr><td colspan="13" class="empty">No sandboxes${filter === "all" ? "" : ` ${filter}`}.</td></tr>`}
      </tbody>
    </table>
    ${data?.pools?.length ? html`<h2>Warm pools</h2><ul>${data.pools.map((p) => html`<li>${p.image} (${p.backend}): ${p.ready}/${p.size} ready${p.error ? ` – ${p.error}` : ""}</li>`)}</ul>` : null}
  </main>`;
}

// ---- the sandbox page -------------------------------------------------------------------------------

const TABS = [["terminal", "Terminal"], ["files", "Files"], ["changes", "Changes"], ["snapshots", "Snapshots"], ["activity", "Activity"], ["metrics", "Metrics"], ["ports", "Ports"]];

// The tabs: a tablist (ARIA's pattern): one tab in the Tab order, the arrow keys, Home and
// End move between them and open the one they land on.
function Tabs({ sb, tab }) {
  const go = (k) => {
    location.hash = `#/sandbox/${sb.id}/${k}`;
    requestAnimationFrame(() => document.getElementById(`tab-${k}`)?.focus());
  };
  const onKey = (e) => {
    const i = TABS.findIndex(([k]) => k === tab);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    go(TABS[(to + TABS.length) % TABS.length][0]);
  };
  return html`<nav class="tabs" role="tablist" aria-label="sandbox views" onKeyDown=${onKey}>
    ${TABS.map(([k, label]) => html`<a role="tab" id=${`tab-${k}`} aria-selected=${tab === k ? "true" : "false"} aria-controls="tabpanel"
      tabindex=${tab === k ? 0 : -1} class=${tab === k ? "on" : ""} href=${`#/sandbox/${sb.id}/${k}`}
      onKeyDown=${(e) => { if (e.key === " ") { e.preventDefault(); go(k); } }}>${label}</a>`)}
  </nav>`;
}

function SandboxPage({ id, tab }) {
  const [sb, setSb] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    try {
      const { sandboxes } = await tool("sandbox_list");
      const s = sandboxes.find((x) => x.id === id || x.name === id);
      setSb(s ?? null);
      setError(s ? null : new Error(`No sandbox ${id}: it may have been destroyed.`));
    } catch (e) {
      setError(e);
    }
  }, [id]);
  useEffect(() => { load(); }, [load]);
  useEvents(useCallback((ev) => { if (!ev || ev.sandbox_id === sb?.id || ev.kind === "hello") load(); }, [sb?.id, load]));
  const act = async (name, args, after) => {
    setBusy(true);
    setError(null);
    try {
      const r = await tool(name, { id: sb.id, ...args });
      after?.(r);
      load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!sb) return html`<main><p><a href="#/">← Sandboxes</a></p><${ErrorLine} error=${error} />${!error && html`<p>Loading…</p>`}</main>`;
  const running = sb.state === "running";
  return html`<main class="sandbox">
    <p><a href="#/">← Sandboxes</a></p>
    <header class="sbhead">
      <h1>${sb.name} <span class=${`state state-${sb.state}`}>${sb.state}</span></h1>
      <p class="meta">${sb.backend} · ${sb.image} · ${sb.cpus} CPU · ${sb.memory?.configured_mib} MiB · network ${netText(sb.network)}
        ${sb.repo ? html` · ${sb.repo} @ <code>${(sb.commit ?? "").slice(0, 12)}</code>` : ""}</p>
      <div class="actions">
        ${running && html`<button disabled=${busy} onClick=${() => act("sandbox_pause")}>Pause</button>`}
        ${!running && html`<button disabled=${busy} onClick=${() => act("sandbox_resume")}>${sb.state === "paused" ? "Resume" : "Start"}</button>`}
        <button disabled=${busy || sb.state === "creating"} onClick=${() => confirmDo(`Restart ${sb.name}? Its machine stops and boots again: every process in it ends (terminals too); its files stay.`, () => act("sandbox_restart"), "Yes, restart")}>Restart</button>
        <button disabled=${busy} onClick=${() => act("sandbox_snapshot", {})}>Snapshot</button>
        <button class="danger" disabled=${busy} onClick=${() => confirmDo(`Destroy ${sb.name}? Its files are deleted.`, () => act("sandbox_destroy", {}, () => (location.hash = "#/")), "Yes, destroy")}>Destroy</button>
      </div>
    </header>
    <${ErrorLine} error=${error} />
    <${Tabs} sb=${sb} tab=${tab} />
    <section class="tab" role="tabpanel" id="tabpanel" aria-labelledby=${`tab-${tab}`} tabindex="-1">
      ${tab === "terminal" && html`<${TerminalTab} key=${sb.id} sandbox=${sb} />`}
      ${tab === "files" && html`<${FilesTab} sandbox=${sb} />`}
      ${tab === "changes" && html`<${ChangesTab} sandbox=${sb} />`}
      ${tab === "snapshots" && html`<${SnapshotsTab} sandbox=${sb} />`}
      ${tab === "activity" && html`<${ActivityTab} sandbox=${sb} />`}
      ${tab === "metrics" && html`<${MetricsTab} sandbox=${sb} />`}
      ${tab === "ports" && html`<${PortsTab} sandbox=${sb} />`}
    </section>
  </main>`;
}

// ---- files ------------------------------------------------------------------------------------------

const UPLOAD_MAX = 32 * 1024 * 1024;
const EDIT_MAX = 1024 * 1024;
const b64 = (buf) => {
  let s = "";
  const bytes = new Uint8Array(buf);
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

function FilesTab({ sandbox }) {
  const [dir, setDir] = useState("/workspace");
  const [listing, setListing] = useState(null);
  const [open, setOpen] = useState(null); // {path, text?, image?, size}
  const [draft, setDraft] = useState("");
  const [error, setError] = useState(null);
  const [note, setNote] = useState("");
  const uploadInput = useRef(null);
  const load = useCallback(async () => {
    try {
      setListing(await tool("sandbox_list_dir", { id: sandbox.id, path: dir }));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [sandbox.id, dir]);
  useEffect(() => { load(); }, [load]);
  const openFile = async (e) => {
    setError(null);
    if (e.type === "dir") return setDir(e.path);
    const image = /\.(png|jpe?g|gif|webp|svg)$/i.test(e.name);
    try {
      const r = await tool("sandbox_read_file", { id: sandbox.id, path: e.path, encoding: image ? "base64" : "utf8", length: EDIT_MAX });
      setOpen({ path: e.path, size: r.size, truncated: r.truncated, image: image ? `data:image/${e.name.split(".").pop().replace("svg", "svg+xml")};base64,${r.content}` : null, text: image ? null : r.content });
      setDraft(image ? "" : r.content);
    } catch (err) {
      setError(err);
    }
  };
  const save = async () => {
    try {
      await tool("sandbox_write_file", { id: sandbox.id, path: open.path, content: draft });
      setNote(`Saved ${open.path}`);
      setOpen({ ...open, text: draft });
      load();
    } catch (e) {
      setError(e);
    }
  };
  const upload = async (files) => {
    for (const f of files) {
      if (f.size > UPLOAD_MAX) {
        setError(new Error(`${f.name} is larger than 32 MiB, the most one upload takes`));
        continue;
      }
      try {
        await tool("sandbox_write_file", { id: sandbox.id, path: `${dir}/${f.name}`, content: b64(await f.arrayBuffer()), encoding: "base64" });
        setNote(`Uploaded ${f.name}`);
      } catch (e) {
        setError(e);
      }
    }
    load();
  };
  const download = async (e) => {
    try {
      const r = await tool("sandbox_read_file", { id: sandbox.id, path: e.path, encoding: "base64", length: UPLOAD_MAX });
      const bytes = Uint8Array.from(atob(r.content), (c) => c.charCodeAt(0));
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([bytes]));
      a.download = e.name;
      a.click();
      URL.revokeObjectURL(a.href);
    } catch (err) {
      setError(err);
    }
  };
  const mkdir = async () => {
    const name = prompt("New folder name");
    if (!name) return;
    try { await tool("sandbox_make_dir", { id: sandbox.id, path: `${dir}/${name}` }); load(); } catch (e) { setError(e); }
  };
  const rename = async (e) => {
    const to = prompt(`Rename ${e.name} to`, e.name);
    if (!to || to === e.name) return;
    try { await tool("sandbox_move", { id: sandbox.id, from: e.path, to: `${dir}/${to}` }); load(); } catch (err) { setError(err); }
  };
  const remove = (e) => confirmDo(`Delete ${e.path}${e.type === "dir" ? " and everything in it" : ""}?`, async () => {
    try { await tool("sandbox_remove", { id: sandbox.id, path: e.path, recursive: e.type === "dir" }); load(); } catch (err) { setError(err); }
  }, "Yes, delete");
  const up = dir.replace(/\/[^/]+$/, "") || "/";
  return html`<div class="files"
      onDragOver=${(e) => e.preventDefault()} onDrop=${(e) => { e.preventDefault(); upload([...e.dataTransfer.files]); }}>
    <div class="toolbar">
      <button onClick=${() => setDir(up)} disabled=${dir === "/"} aria-label="up one folder">↑</button>
      <code class="path">${dir}</code>
      <span class="grow"></span>
      <button onClick=${() => setDir("/")} aria-label="go to the root folder">/</button>
      <button onClick=${() => setDir("/workspace")}>/workspace</button>
      <button onClick=${mkdir}>New folder</button>
      <button onClick=${() => uploadInput.current?.click()}>Upload</button>
      <input ref=${uploadInput} type="file" multiple hidden aria-label="files to upload" onChange=${(e) => upload([...e.target.files])} />
    </div>
    <${ErrorLine} error=${error} />${note && html`<p class="note">${note}</p>`}
    <div class="split">
      <table class="listing">
        <tbody>
          ${(listing?.entries ?? []).map((e) => html`<tr key=${e.path}>
            <td><button class="link" onClick=${() => openFile(e)}>${e.type === "dir" ? "📁 " : ""}${e.name}</button></td>
            <td class="num">${e.type === "dir" ? "" : fmtBytes(e.size)}</td>
            <td class="acts">
              ${e.type !== "dir" && html`<button class="small" onClick=${() => download(e)} aria-label=${`download ${e.name}`}>Download</button>`}
              <button class="small" onClick=${() => rename(e)} aria-label=${`rename ${e.name}`}>Rename</button>
              <button class="small danger" onClick=${() => remove(e)} aria-label=${`delete ${e.name}`}>Delete</button></td>
          </tr>`)}
          ${listing && !listing.entries.length && html`<tr><td class="empty">Empty folder. Drop files here to upload.</td></tr>`}
        </tbody>
      </table>
      ${open && html`<div class="viewer">
        <h3><code>${open.path}</code> <small>${fmtBytes(open.size)}</small></h3>
        ${open.image ? html`<img src=${open.image} alt=${open.path} />` : html`
          <div class="editor"><pre class="lines" aria-hidden="true">${draft.split("\n").map((_, i) => `${i + 1}\n`).join("")}</pre>
          <textarea aria-label="file contents" spellcheck="false" value=${draft} onInput=${(e) => setDraft(e.target.value)} readOnly=${open.truncated}></textarea></div>
          ${open.truncated ? html`<p class="hint">Only the first MiB is shown; large files are read-only here.</p>` : html`<button onClick=${save} disabled=${draft === open.text}>Save</button>`}`}
      </div>`}
    </div>
  </div>`;
}

// ---- changes ------------------------------------------------------------------------------------------

function ChangesTab({ sandbox }) {
  const [diff, setDiff] = useState(null);
  const [error, setError] = useState(null);
  const [message, setMessage] = useState("");
  const [author, setAuthor] = useState({ name: "", email: "" });
  const [note, setNote] = useState("");
  const load = useCallback(async () => {
    try { setDiff(await tool("sandbox_diff", { id: sandbox.id })); setError(null); } catch (e) { setError(e); }
  }, [sandbox.id]);
  useEffect(() => { load(); }, [load]);
  const commit = async (e) => {
    e.preventDefault();
    try {
      const args = { id: sandbox.id, message };
      if (author.name) args.author_name = author.name;
      if (author.email) args.author_email = author.email;
      const r = await tool("sandbox_git_commit", args);
      setNote(`Committed ${r.commit.slice(0, 12)} on ${r.branch} (${r.files_changed} files)`);
      setMessage("");
      load();
    } catch (err) { setError(err); }
  };
  const push = async () => {
    try { const r = await tool("sandbox_git_push", { id: sandbox.id }); setNote(`Pushed ${r.branch} to ${r.remote} (${r.commit.slice(0, 12)})`); } catch (e) { setError(e); }
  };
  if (!sandbox.repo) return html`<p class="hint">This sandbox was created without a repository: there is nothing to compare.</p>`;
  return html`<div class="changes">
    <${ErrorLine} error=${error} />${note && html`<p class="note">${note}</p>`}
    ${diff && html`<p>Against <code>${(diff.base ?? "").slice(0, 12)}</code>: ${diff.files.length} file(s) changed.</p>`}
    ${diff?.files.map((f) => html`<details class="diff" open key=${f.path}>
      <summary><span class=${`st st-${f.status}`}>${f.status}</span> <code>${f.old_path && f.old_path !== f.path ? `${f.old_path} → ` : ""}${f.path}</code>
        <small>${f.binary ? "binary" : `+${f.insertions} −${f.deletions}`}</small></summary>
      ${!f.binary && html`<pre class="patch">${(f.patch ?? "").split("\n").map((l) => html`<span class=${l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : l.startsWith("@@") ? "hunk" : ""}>${l}\n</span>`)}</pre>`}
    </details>`)}
    <form class="commit" onSubmit=${commit}>
      <label class="wide">Commit message <textarea required rows="2" value=${message} onInput=${(e) => setMessage(e.target.value)}></textarea></label>
      <label>Author name <input value=${author.name} onInput=${(e) => setAuthor({ ...author, name: e.target.value })} /></label>
      <label>Author email <input value=${author.email} onInput=${(e) => setAuthor({ ...author, email: e.target.value })} /></label>
      <div class="wide"><button type="submit">Commit to warren/${sandbox.name}</button> <button type="button" onClick=${push}>Push</button></div>
    </form>
  </div>`;
}

// ---- snapshots --------------------------------------------------------------------------------------------

// The family this sandbox belongs to (snapshot_list with tree: true): each sandbox with the
// snapshots taken of it, each snapshot with the sandboxes forked from it, from the first
// ancestor down. A sandbox destroyed since keeps its place while snapshots of it remain.
function familyTree(tree) {
  const boxes = new Map(tree.sandboxes.map((b) => [b.id, { ...b, kind: "sandbox", children: [] }]));
  const snaps = new Map(tree.snapshots.map((s) => [s.snapshot_id, { ...s, kind: "snapshot", children: [] }]));
  for (const s of snaps.values()) {
    if (!s.sandbox_id || boxes.has(s.sandbox_id)) continue;
    // A destroyed sandbox: forked from the snapshot below its oldest one, if another's.
    const own = [...snaps.values()].filter((x) => x.sandbox_id === s.sandbox_id).sort((a, b) => a.created_at.localeCompare(b.created_at));
    const below = snaps.get(own[0].parent_snapshot_id);
    boxes.set(s.sandbox_id, { id: s.sandbox_id, name: `destroyed sandbox ${s.sandbox_id.slice(0, 8)}`, gone: true, kind: "sandbox",
      from_snapshot_id: below && below.sandbox_id !== s.sandbox_id ? below.snapshot_id : null, children: [] });
  }
  const roots = [];
  for (const s of [...snaps.values()].sort((a, b) => a.created_at.localeCompare(b.created_at)))
    (boxes.get(s.sandbox_id)?.children ?? roots).push(s);
  for (const b of boxes.values()) (snaps.get(b.from_snapshot_id)?.children ?? roots).push(b);
  return roots;
}

function SnapshotsTab({ sandbox }) {
  const [tree, setTree] = useState(null);
  const [error, setError] = useState(null);
  const [refused, setRefused] = useState({}); // snapshot id -> why its deletion was refused
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    try { setTree(await tool("snapshot_list", { sandbox: sandbox.id, tree: true })); setError(null); } catch (e) { setError(e); }
  }, [sandbox.id]);
  useEffect(() => { load(); }, [load]);
  useEvents(load);
  const act = async (name, args) => {
    setBusy(true);
    try { await tool(name, args); setError(null); load(); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const remove = (s) => confirmDo(`Delete snapshot ${s.name}?`, async () => {
    try { await tool("snapshot_delete", { snapshot: s.snapshot_id }); load(); } catch (e) { setRefused({ ...refused, [s.snapshot_id]: String(e.message ?? e) }); }
  }, "Yes, delete");
  const node = (n) => n.kind === "sandbox"
    ? html`<li key=${`b${n.id}`} class=${`sbnode${n.id === sandbox.id ? " self" : ""}`}>
        <span class="kind" aria-hidden="true">▣</span> ${n.gone ? html`<span class="hint">${n.name}</span>`
          : n.id === sandbox.id ? html`<strong>${n.name}</strong> <small>(this sandbox)</small>` : html`<a href=${`#/sandbox/${n.id}/snapshots`}>${n.name}</a>`}
        ${!n.gone && html` <span class=${`state state-${n.state}`}>${n.state}</span> <small>created ${fmtTime(n.created_at)}</small>`}
        ${n.children.length ? html`<ul>${n.children.map(node)}</ul>` : null}
      </li>`
    : html`<li key=${`s${n.snapshot_id}`} class="snapnode">
        <span class="kind" aria-hidden="true">◉</span> snapshot <strong>${n.name}</strong>
        <small>${fmtTime(n.created_at)} · ${fmtBytes(n.size_bytes)} · ${n.layers} layer(s)</small>
        <button class="small" disabled=${busy} onClick=${() => act("sandbox_restore", { snapshot: n.snapshot_id })} aria-label=${`fork ${n.name}`}>Fork</button>
        <button class="small danger" onClick=${() => remove(n)} aria-label=${`delete snapshot ${n.name}`}
          title=${n.used_by?.length ? `in use by ${n.used_by.join(", ")}` : ""}>Delete</button>
        ${refused[n.snapshot_id] && html`<p class="error" role="alert">${refused[n.snapshot_id]}</p>`}
        ${n.children.length ? html`<ul>${n.children.map(node)}</ul>` : null}
      </li>`;
  const roots = tree ? familyTree(tree) : [];
  return html`<div class="snapshots">
    <div class="toolbar"><button disabled=${busy} onClick=${() => act("sandbox_snapshot", { id: sandbox.id })}>Take a snapshot</button></div>
    <${ErrorLine} error=${error} />
    <ul class="tree" aria-label="snapshots and forks">${roots.map(node)}</ul>
    ${tree && !tree.snapshots.length && html`<p class="hint">No snapshots of this sandbox or its family yet.</p>`}
  </div>`;
}

// ---- activity ------------------------------------------------------------------------------------------------

function ActivityTab({ sandbox }) {
  const [events, setEvents] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback(async () => {
    try { setEvents((await tool("sandbox_events", { id: sandbox.id, limit: 500 })).events); } catch (e) { setError(e); }
  }, [sandbox.id]);
  useEffect(() => { load(); }, [load]);
  useEvents(useCallback((ev) => { if (ev?.sandbox_id === sandbox.id) load(); }, [sandbox.id, load]));
  const row = (e) => {
    const d = e.detail;
    if (e.kind === "tool" && d && typeof d === "object") {
      const args = Object.entries(d.args ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
      const out = [d.stdout_head, d.stderr_head].filter(Boolean).join("\n");
      return { client: d.client || "–", what: d.tool, summary: args, outcome: d.ok ? (d.exit_code != null ? `exit ${d.exit_code}` : "ok") : d.error, bad: !d.ok || (d.exit_code ?? 0) !== 0, ms: d.duration_ms, out };
    }
    if (d && typeof d === "object" && d.host)
      return { client: "sandbox", what: e.kind, summary: `${d.kind} ${d.host}:${d.port}${d.address ? ` (${d.address})` : ""} ↑${fmtBytes(d.bytes_up)} ↓${fmtBytes(d.bytes_down)}`, outcome: d.reason ?? (d.allowed ? "allowed" : "refused"), bad: !d.allowed, ms: d.duration_ms };
    return { client: "warren", what: e.kind, summary: typeof d === "string" ? d : d ? JSON.stringify(d) : "", outcome: "", bad: e.kind === "failed" };
  };
  return html`<div class="activity"><${ErrorLine} error=${error} />
    <table><thead><tr><th>Time</th><th>Client</th><th>Call or event</th><th>Arguments / detail</th><th>Outcome</th><th>ms</th></tr></thead><tbody>
      ${(events ?? []).slice().reverse().map((e, i) => {
        const r = row(e);
        return html`<tr key=${i} class=${r.bad ? "bad" : ""}>
          <td>${fmtTime(e.at)}</td><td>${r.client}</td><td>${r.what}</td>
          <td>${r.summary}${r.out ? html`<pre class="out">${r.out}</pre>` : null}</td><td>${r.outcome}</td><td class="num">${r.ms ?? ""}</td></tr>`;
      })}
    </tbody></table></div>`;
}

// ---- metrics --------------------------------------------------------------------------------------------------

function Chart({ title, points, format }) {
  const w = 360, h = 90;
  if (!points.length) return html`<figure class="chart"><figcaption>${title}</figcaption><p class="hint">No samples yet.</p></figure>`;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1, y1 = Math.max(...ys, 1);
  const d = points.map(([x, y], i) => `${i ? "L" : "M"}${((x - x0) / Math.max(x1 - x0, 1)) * w},${h - (y / y1) * h}`).join(" ");
  return html`<figure class="chart"><figcaption>${title}: ${format(ys[ys.length - 1])} (max ${format(y1)})</figcaption>
    <svg viewBox=${`0 0 ${w} ${h}`} role="img" aria-label=${title}><path d=${d} /></svg></figure>`;
}

function MetricsTab({ sandbox }) {
  const [samples, setSamples] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const load = async () => {
      try { setSamples((await tool("sandbox_metrics", { id: sandbox.id })).samples); } catch (e) { setError(e); }
    };
    load();
    const t = setInterval(load, 10000);
    return () => clearInterval(t);
  }, [sandbox.id]);
  const s = samples ?? [];
  const at = (x) => Date.parse(x.at);
  const cpu = s.slice(1).map((x, i) => [at(x), (x.cpu_seconds - s[i].cpu_seconds) / Math.max((at(x) - at(s[i])) / 1000, 1)]);
  return html`<div class="metrics"><${ErrorLine} error=${error} />
    <${Chart} title="Memory used (host)" points=${s.map((x) => [at(x), x.memory_usage_bytes])} format=${fmtBytes} />
    <${Chart} title="Balloon" points=${s.map((x) => [at(x), x.balloon_bytes])} format=${fmtBytes} />
    <${Chart} title="CPU (cores)" points=${cpu} format=${(v) => v.toFixed(2)} />
    <${Chart} title="Disk used" points=${s.map((x) => [at(x), x.disk_used_bytes])} format=${fmtBytes} />
  </div>`;
}

// ---- ports ------------------------------------------------------------------------------------------------------

function PortsTab({ sandbox }) {
  const [port, setPort] = useState(8000);
  const [links, setLinks] = useState([]);
  const [error, setError] = useState(null);
  const open = async (e) => {
    e.preventDefault();
    setError(null);
    const r = await fetch("/api/ports", {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": currentCsrf() },
      body: JSON.stringify({ sandbox: sandbox.id, port: Number(port) }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) return setError(new Error(body.error ?? `HTTP ${r.status}`));
    setLinks([{ port, url: body.url }, ...links.filter((l) => l.port !== port)]);
    window.open(body.url, "_blank", "noopener");
  };
  return html`<div class="ports">
    <form class="toolbar" onSubmit=${open}>
      <label>Port <input name="port" type="number" min="1" max="65535" value=${port} onInput=${(e) => setPort(Number(e.target.value))} /></label>
      <button type="submit">Open in a new tab</button>
    </form>
    <${ErrorLine} error=${error} />
    <p class="hint">A server a process in the sandbox listens on (its loopback or any address), through warren. Its pages run in an origin of their own: they cannot use your sign-in.</p>
    <ul>${links.map((l) => html`<li><a href=${l.url} target="_blank" rel="noopener">port ${l.port}</a></li>`)}</ul>
  </div>`;
}

// ---- the app ----------------------------------------------------------------------------------------------------

function App() {
  const [session, setSession] = useState(null);
  const [where, setWhere] = useState(route());
  useEffect(() => {
    const on = () => setWhere(route());
    addEventListener("hashchange", on);
    fetch("/api/session").then((r) => r.json()).then((s) => {
      setCsrf(s.csrf);
      setSession(s);
    });
    return () => removeEventListener("hashchange", on);
  }, []);
  useEffect(() => {
    if (!session?.signed_in) return;
    const es = startEvents();
    return () => es.close();
  }, [session?.signed_in]);
  if (!session) return html`<p class="boot">Loading…</p>`;
  if (!session.signed_in)
    return html`<${SignIn} onSignedIn=${(csrf) => { setCsrf(csrf); setSession({ ...session, signed_in: true, csrf }); }} />`;
  const signOut = async () => {
    await fetch("/api/logout", { method: "POST", headers: { "X-CSRF-Token": session.csrf } });
    setSession({ ...session, signed_in: false });
  };
  return html`<header class="top"><a href="#/" class="brand">warren</a><span class="grow"></span>
      ${session.auth === "token" && html`<button class="link" onClick=${signOut}>Sign out</button>`}</header>
    ${where.page === "sandbox" ? html`<${SandboxPage} key=${where.id} id=${where.id} tab=${where.tab} />` : html`<${SandboxList} />`}
    <${ConfirmHost} />`;
}

render(html`<${App} />`, document.getElementById("app"));
