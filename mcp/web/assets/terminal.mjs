// The Terminal tab: xterm.js on a PTY inside the sandbox, over the WebSocket
// /sandboxes/<id>/terminal (protocol in docs/terminal.md). Several terminals at once;
// each remembers its PTY session in sessionStorage, so a reload reattaches to the same
// shell with its recent output.
import { html, useEffect, useRef, useState } from "vendor/preact-htm";
import { Terminal } from "vendor/xterm";
import { FitAddon } from "vendor/addon-fit";

const storeKey = (sandbox) => `warren.terminals.${sandbox.id}`;
const saved = (sandbox) => {
  try {
    return JSON.parse(sessionStorage.getItem(storeKey(sandbox))) ?? [];
  } catch {
    return [];
  }
};
const save = (sandbox, list) => sessionStorage.setItem(storeKey(sandbox), JSON.stringify(list));

function Term({ sandbox, slot, onPty, onClosed }) {
  const box = useRef(null);
  const [status, setStatus] = useState("connecting…");
  useEffect(() => {
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    const term = new Terminal({
      cursorBlink: true,
      fontSize: 14,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      theme: dark ? { background: "#111318" } : { background: "#ffffff", foreground: "#1d1f24", cursor: "#1d1f24" },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current);
    // The terminal takes Tab (the shell completes with it): F6 leaves it for the view's tabs.
    term.attachCustomKeyEventHandler((e) => {
      if (e.key !== "F6") return true;
      if (e.type === "keydown") {
        e.preventDefault();
        document.querySelector('[role="tab"][aria-selected="true"]')?.focus();
      }
      return false;
    });
    fit.fit();
    const q = new URLSearchParams({ cols: term.cols, rows: term.rows });
    if (slot.pty) q.set("pty", slot.pty);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/sandboxes/${encodeURIComponent(sandbox.id)}/terminal?${q}`);
    ws.binaryType = "arraybuffer";
    const send = (o) => ws.readyState === 1 && ws.send(JSON.stringify(o));
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        const m = JSON.parse(e.data);
        if (m.type === "ready") {
          onPty(m.pty);
          setStatus(m.reattached ? "reattached" : "");
        } else if (m.type === "exit") {
          setStatus(`exited${m.signal ? ` (signal ${m.signal})` : ` (${m.code})`}`);
          onClosed();
        } else if (m.type === "error") {
          setStatus(m.message);
          if (m.gone) onClosed();
        }
        return;
      }
      const bytes = new Uint8Array(e.data);
      // Acknowledged once xterm has drawn it: the server sends no more than a window ahead.
      term.write(bytes, () => send({ type: "ack", bytes: bytes.length }));
    };
    ws.onclose = (e) => setStatus((s) => (s.startsWith("exited") ? s : e.reason || "disconnected"));
    const enc = new TextEncoder();
    const input = term.onData((d) => ws.readyState === 1 && ws.send(enc.encode(d)));
    const binary = term.onBinary((d) => ws.readyState === 1 && ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
    const resize = term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box.current);
    term.focus();
    return () => {
      observer.disconnect();
      input.dispose();
      binary.dispose();
      resize.dispose();
      ws.close();
      term.dispose();
    };
  }, [sandbox.id, slot.key]);
  return html`<div class="term"><div class="termbox" ref=${box}></div><p class="termstatus" role="status">${status || html`<span class="hint">F6 leaves the terminal</span>`}</p></div>`;
}

export function TerminalTab({ sandbox }) {
  const [slots, setSlots] = useState(() => {
    const list = saved(sandbox);
    return list.length ? list : [{ key: 1, pty: null }];
  });
  const [active, setActive] = useState(0);
  useEffect(() => save(sandbox, slots), [slots]);
  const setPty = (i, pty) => setSlots((s) => s.map((x, j) => (j === i ? { ...x, pty } : x)));
  const add = () => {
    setSlots((s) => [...s, { key: Math.max(0, ...s.map((x) => x.key)) + 1, pty: null }]);
    setActive(slots.length);
  };
  const close = (i) => {
    setSlots((s) => s.filter((_, j) => j !== i));
    setActive(0);
  };
  if (sandbox.state !== "running" && sandbox.state !== "paused")
    return html`<p class="hint">The sandbox is ${sandbox.state}: start it to open a terminal.</p>`;
  return html`<div class="terminals">
    <div class="toolbar">
      ${slots.map((s, i) => html`<button class=${i === active ? "on" : ""} onClick=${() => setActive(i)}>Terminal ${s.key}</button>`)}
      <button onClick=${add} aria-label="new terminal">+</button>
    </div>
    ${slots.map((s, i) => html`<div key=${s.key} hidden=${i !== active}>
      <${Term} sandbox=${sandbox} slot=${s} onPty=${(p) => setPty(i, p)} onClosed=${() => setPty(i, null)} />
    </div>`)}
    ${!slots.length && html`<p class="hint">No terminal open.</p>`}
  </div>`;
}
