// The code depends downward, never around: no two files of warren's core (the
// warren_core library: mcp/ and vmm/) may reach each other through a chain of calls.
// Read from the object files with nm: file A depends on file B when A uses a symbol B
// defines. A cycle is reported with the files in it and the symbols that close it.
//
//   node tests/layout/dependencies.mjs <build dir>
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const build = process.argv[2] || process.env.WARREN_BUILD_DIR;
const objectDir = join(build, 'CMakeFiles', 'warren_core.dir');

function objects(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return objects(path);
    return name.endsWith('.c.o') ? [path] : [];
  });
}

const files = objects(objectDir);
if (files.length < 20) {
  console.error(`only ${files.length} object files under ${objectDir}: build first`);
  process.exit(1);
}

const defines = new Map(); // symbol -> file
const uses = new Map(); // file -> Set of symbols
for (const path of files) {
  const file = relative(objectDir, path).replace(/\.c\.o$/, '');
  const used = new Set();
  for (const line of execFileSync('nm', [path], { encoding: 'utf8' }).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 3 && 'TDRB'.includes(f[1])) defines.set(f[2], file);
    else if (f.length === 2 && f[0] === 'U') used.add(f[1]);
  }
  uses.set(file, used);
}

const edges = new Map(); // file -> Map(dep -> [symbols])
for (const [file, used] of uses) {
  const deps = new Map();
  for (const symbol of used) {
    const dep = defines.get(symbol);
    if (!dep || dep === file) continue;
    if (!deps.has(dep)) deps.set(dep, []);
    deps.get(dep).push(symbol);
  }
  edges.set(file, deps);
}

// Tarjan's strongly connected components: every component of more than one file is a loop.
let counter = 0;
const index = new Map(), low = new Map(), stack = [], onStack = new Set(), loops = [];
function visit(v) {
  index.set(v, counter);
  low.set(v, counter++);
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v).keys()) {
    if (!index.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), index.get(w)));
    }
  }
  if (low.get(v) === index.get(v)) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) loops.push(component.sort());
  }
}
for (const v of edges.keys()) if (!index.has(v)) visit(v);

if (loops.length === 0) {
  console.log(`ok: ${files.length} files of warren_core, no dependency loops`);
  process.exit(0);
}
for (const loop of loops) {
  console.error(`dependency loop between: ${loop.join(', ')}`);
  for (const a of loop)
    for (const [b, symbols] of edges.get(a))
      if (loop.includes(b)) console.error(`  ${a} -> ${b}: ${symbols.slice(0, 4).join(', ')}`);
}
process.exit(1);
