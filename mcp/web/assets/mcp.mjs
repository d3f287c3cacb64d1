// A small MCP client for the browser: JSON-RPC over Streamable HTTP at /mcp, with the
// session cookie and the CSRF token of the sign-in. The UI uses the same tools agents do.
let csrf = "";
let sessionId = null;
let nextId = 1;
let initializing = null;

export function setCsrf(token) {
  csrf = token ?? "";
}

export function currentCsrf() {
  return csrf;
}

async function post(message) {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "X-CSRF-Token": csrf,
  };
  if (sessionId) headers["Mcp-Session-Id"] = sessionId;
  if (sessionId) headers["MCP-Protocol-Version"] = "2025-06-18";
  const r = await fetch("/mcp", { method: "POST", headers, body: JSON.stringify(message), credentials: "same-origin" });
  if (r.status === 401) throw Object.assign(new Error("signed out"), { signedOut: true });
  if (r.status === 404 && sessionId) {
    sessionId = null; // the server restarted: a new session
    throw Object.assign(new Error("session expired"), { retry: true });
  }
  const id = r.headers.get("Mcp-Session-Id");
  if (id) sessionId = id;
  if (r.status === 202) return null;
  const type = r.headers.get("Content-Type") ?? "";
  if (type.startsWith("text/event-stream")) {
    // The answer is the last JSON-RPC response in the stream (progress comes before it).
    const text = await r.text();
    let last = null;
    for (const block of text.split("\n\n"))
      for (const line of block.split("\n"))
        if (line.startsWith("data:")) {
          const m = JSON.parse(line.slice(5));
          if (m.id === message.id) last = m;
        }
    return last;
  }
  const body = await r.json().catch(() => null);
  if (!r.ok && !body?.jsonrpc) throw new Error(body?.error ?? `HTTP ${r.status}`);
  return body;
}

async function initialize() {
  const r = await post({
    jsonrpc: "2.0", id: nextId++, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "warren-web", version: "1" } },
  });
  if (r?.error) throw new Error(r.error.message);
  await post({ jsonrpc: "2.0", method: "notifications/initialized" });
}

/** Calls a tool; returns its structured result or throws its error text. */
export async function tool(name, args = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (!sessionId) {
      initializing ??= initialize().finally(() => { initializing = null; });
      await initializing;
    }
    try {
      const r = await post({ jsonrpc: "2.0", id: nextId++, method: "tools/call", params: { name, arguments: args } });
      if (r?.error) throw new Error(r.error.message);
      const result = r?.result;
      if (result?.isError) throw new Error(result.content?.map((c) => c.text).join("\n") || `${name} failed`);
      return result?.structuredContent ?? {};
    } catch (e) {
      if (!e.retry) throw e;
    }
  }
  throw new Error(`${name}: no MCP session`);
}
