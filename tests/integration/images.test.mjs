// OCI images against a real registry on loopback (Debian's docker-registry), with an image
// the test builds itself: a minimal Debian root from mmdebstrap, made into a two-layer OCI
// image with umoci (the second layer deletes a file: a whiteout) and pushed with skopeo.
// Pull, create sandboxes from it on the jail and on QEMU, install a package with dpkg, and
// show the host and the image unchanged; image_delete refused while used; bad input.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

import {
  buildDeb,
  callTool,
  callToolError,
  connectStdio,
  onCleanup,
  skip,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  tempWorkDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();
const has = (bin) => (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => existsSync(join(d, bin)));
for (const bin of ["skopeo", "umoci", "bsdtar", "docker-registry", "mmdebstrap", "busybox"])
  if (!has(bin)) skip(`${bin} is not installed (tools/setup.sh installs it)`);

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", ...opts });

// ---- the registry and the image ---------------------------------------------------------
const work = tempWorkDir("warren-it-images-");
const port = await freePort();
const registry = `127.0.0.1:${port}`;
writeFileSync(join(work, "registry.yml"),
  `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry\n` +
  `http:\n  addr: ${registry}\n`);
const registryProcess = spawn("docker-registry", ["serve", join(work, "registry.yml")], { stdio: "ignore" });
onCleanup(() => registryProcess.kill("SIGKILL"));

const layout = join(work, "layout");
const bundle = join(work, "bundle");
const rootTar = join(work, "root.tar");
run("mmdebstrap", ["--variant=minbase", "--quiet", "bookworm", rootTar], { timeout: 600_000 });
run("umoci", ["init", "--layout", layout]);
run("umoci", ["new", "--image", `${layout}:t`]);
run("umoci", ["unpack", "--image", `${layout}:t`, bundle]);
run("tar", ["-xf", rootTar, "-C", join(bundle, "rootfs")]);
writeFileSync(join(bundle, "rootfs/etc/os-release"), 'PRETTY_NAME="warren test image"\nID=warren-test\n');
run("umoci", ["repack", "--image", `${layout}:t`, bundle]);
run("rm", ["-rf", bundle]);
run("umoci", ["unpack", "--image", `${layout}:t`, bundle]);
run("rm", [join(bundle, "rootfs/usr/share/doc/dpkg/copyright")]);
writeFileSync(join(bundle, "rootfs/etc/layer-two"), "two\n");
run("umoci", ["repack", "--image", `${layout}:t`, bundle]);
run("umoci", ["config", "--image", `${layout}:t`, "--config.env", "WARREN_IMAGE=yes", "--config.workingdir", "/srv"]);
run("umoci", ["config", "--image", `${layout}:t`, "--tag", "user", "--config.user", "daemon"]);
// A one-file image whose layer the registry will serve corrupted.
const small = join(work, "small");
run("umoci", ["new", "--image", `${layout}:small`]);
run("umoci", ["unpack", "--image", `${layout}:small`, small]);
writeFileSync(join(small, "rootfs/only-file"), "small\n");
run("umoci", ["repack", "--image", `${layout}:small`, small]);
// An image with one static binary and no shell: argv execs still run (guest-init is
// warren's own, never the image's).
const bare = join(work, "bare");
run("umoci", ["new", "--image", `${layout}:bare`]);
run("umoci", ["unpack", "--image", `${layout}:bare`, bare]);
run("mkdir", ["-p", join(bare, "rootfs/bin")]);
run("cp", [run("sh", ["-c", "command -v busybox"]).trim(), join(bare, "rootfs/bin/busybox")]);
run("umoci", ["repack", "--image", `${layout}:bare`, bare]);
const smallLayer = JSON.parse(readFileSync(join(layout, "blobs/sha256",
  JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests
    .find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === "small").digest.slice(7)), "utf8")).layers[0].digest;
const ref = `${registry}/test/debian:1`;
const userRef = `${registry}/test/debian:user`;
for (let i = 0; ; i++) {
  try {
    run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout}:t`, `docker://${ref}`]);
    run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout}:user`, `docker://${userRef}`]);
    run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout}:small`, `docker://${registry}/test/corrupt:1`]);
    run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout}:bare`, `docker://${registry}/test/bare:1`]);
    break;
  } catch (e) {
    if (i === 20) throw e; // the registry may take a moment to listen
    await new Promise((r) => setTimeout(r, 250));
  }
}

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const client = await connectStdio({ stateDir, args: ["--insecure-registry", registry] });
const hostOsRelease = readFileSync("/etc/os-release", "utf8");
const hostDpkgStatus = readFileSync("/var/lib/dpkg/status");
const layersDir = join(stateDir, "images", "layers");
const treeDigest = (dir) => createHash("sha256").update(run("sh", ["-c", `cd ${dir} && find . -printf '%p %s %m\\n' | sort`])).digest("hex");

test("image_pull: progress while it downloads, layers unpacked once, instant the second time", async () => {
  const progress = [];
  const r = await client.callTool({ name: "image_pull", arguments: { ref } }, undefined, {
    onprogress: (p) => progress.push(p.message),
    timeout: 300_000,
  });
  assert.notEqual(r.isError, true, JSON.stringify(r.content));
  const image = r.structuredContent;
  assert.equal(image.image, ref);
  assert.match(image.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(image.layers, 2);
  assert.ok(image.size_bytes > 1 << 20, JSON.stringify(image));
  assert.ok(progress.length >= 1, "no progress notifications");
  assert.equal(readdirSync(layersDir).length, 2);
  const started = Date.now();
  const again = await callTool(client, "image_pull", { ref });
  assert.equal(again.digest, image.digest);
  assert.ok(Date.now() - started < 1000, "pulling an image that is there took a second");
});

let sb;
test("a sandbox from the image: its own system, its config, whiteouts, and writable everywhere", async () => {
  const before = treeDigest(layersDir);
  sb = await callTool(client, "sandbox_create", { name: "from-image", image: ref });
  assert.equal(sb.image, ref);
  const sh = async (command) => {
    const r = await callTool(client, "sandbox_exec", { id: sb.id, command, timeout_seconds: 120 });
    assert.equal(r.exit_code, 0, `${command}: ${r.stderr}`);
    return r.stdout;
  };
  assert.equal(await sh(". /etc/os-release; echo $PRETTY_NAME"), "warren test image\n");
  assert.equal(await sh("echo $WARREN_IMAGE; pwd"), "yes\n/srv\n");
  assert.equal((await callTool(client, "sandbox_exec", { id: sb.id, command: "pwd", cwd: "/tmp" })).stdout, "/tmp\n");
  assert.equal(await sh("cat /etc/layer-two; test ! -e /usr/share/doc/dpkg/copyright && echo gone"), "two\ngone\n");
  // argv execs need no shell.
  const argv = await callTool(client, "sandbox_exec", { id: sb.id, argv: ["/usr/bin/env"] });
  assert.match(argv.stdout, /WARREN_IMAGE=yes/);
  const pkg = "warren-test-image-pkg";
  await callTool(client, "sandbox_write_file", { id: sb.id, path: `/tmp/${pkg}.deb`, content: buildDeb(pkg), encoding: "base64" });
  await sh(`dpkg -i /tmp/${pkg}.deb && dpkg -s ${pkg} | grep -q 'install ok installed'`);
  await sh("echo x > /usr/bin/made-here && echo y >> /etc/os-release && rm /etc/layer-two");
  // The host and the image are unchanged.
  assert.equal(readFileSync("/etc/os-release", "utf8"), hostOsRelease);
  assert.deepEqual(readFileSync("/var/lib/dpkg/status"), hostDpkgStatus);
  assert.equal(treeDigest(layersDir), before, "the image's layers changed");
  const fresh = await callTool(client, "sandbox_create", { name: "from-image-2", image: ref });
  const r = await callTool(client, "sandbox_exec", { id: fresh.id, command: `cat /etc/layer-two; test ! -e /usr/bin/made-here; dpkg -s ${pkg} 2>&1 | head -1` });
  assert.equal(r.stdout.split("\n")[0], "two");
  assert.match(r.stdout, /not installed/);
  await callTool(client, "sandbox_destroy", { id: fresh.id });
});

test("the image config's User: execs run as that user, with its home", async () => {
  const box = await callTool(client, "sandbox_create", { name: "as-daemon", image: userRef });
  const r = await callTool(client, "sandbox_exec", { id: box.id, command: "id -un; id -gn; echo $HOME", cwd: "/" });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.equal(r.stdout, `daemon\ndaemon\n${run("sh", ["-c", "getent passwd daemon | cut -d: -f6"]).trim()}\n`);
  await callTool(client, "sandbox_destroy", { id: box.id });
  await callTool(client, "image_delete", { image: userRef });
});

test("an image without a shell: argv execs run, a command line says why it cannot", async () => {
  const box = await callTool(client, "sandbox_create", { name: "bare", image: `${registry}/test/bare:1` });
  const r = await callTool(client, "sandbox_exec", { id: box.id, argv: ["/bin/busybox", "echo", "no shell needed"], cwd: "/" });
  assert.equal(r.stdout, "no shell needed\n", r.stderr);
  const sh = await callTool(client, "sandbox_exec", { id: box.id, command: "echo hi", cwd: "/" });
  assert.equal(sh.exit_code, 127);
  assert.match(sh.stderr, /\/bin\/sh: No such file or directory/);
  await callTool(client, "sandbox_destroy", { id: box.id });
  await callTool(client, "image_delete", { image: `${registry}/test/bare:1` });
});

test("a QEMU VM from the image: the same system over virtiofs, packages install", async () => {
  const guestDir = process.env.WARREN_GUEST_DIR || join(process.env.WARREN_BUILD_DIR ?? "build", "guest");
  if (!existsSync(join(guestDir, "vmlinuz")) || !has("qemu-system-x86_64")) skip("no guest kernel or QEMU");
  const vmClient = await connectStdio({
    stateDir,
    args: ["--backend", "qemu", "--insecure-registry", registry],
    env: { WARREN_GUEST_DIR: guestDir, WARREN_QEMU_ACCEL: process.env.WARREN_QEMU_ACCEL ?? "tcg" },
  });
  const vm = await callTool(vmClient, "sandbox_create", { name: "image-vm", image: ref }, { timeout: 180_000 });
  assert.equal(vm.backend, "qemu");
  const pkg = "warren-test-vm-image";
  await callTool(vmClient, "sandbox_write_file", { id: vm.id, path: `/tmp/${pkg}.deb`, content: buildDeb(pkg), encoding: "base64" });
  const r = await callTool(vmClient, "sandbox_exec", {
    id: vm.id,
    command: `. /etc/os-release; echo $PRETTY_NAME; echo $WARREN_IMAGE; dpkg -i /tmp/${pkg}.deb >/dev/null && cat /usr/share/${pkg}/hello`,
  }, { timeout: 180_000 });
  assert.equal(r.exit_code, 0, r.stderr);
  assert.equal(r.stdout, "warren test image\nyes\nhello from a package\n");
  await callTool(vmClient, "sandbox_destroy", { id: vm.id });
  await vmClient.close();
}, { timeoutMs: 300_000 });

test("image_build: a template from the image, steps cached on a rebuild, a failing step registers nothing", async () => {
  const build = {
    name: "tools",
    from: ref,
    files: { "/etc/tools.conf": "built\n" },
    run: ["mkdir -p /opt/tools && echo v1 > /opt/tools/version", "useradd -r -M toolsvc"],
    env: { TOOLS_HOME: "/opt/tools" },
    workdir: "/opt/tools",
  };
  const progress = [];
  const first = await client.callTool({ name: "image_build", arguments: build }, undefined, {
    onprogress: (p) => progress.push(p.message),
    timeout: 300_000,
  });
  assert.notEqual(first.isError, true, JSON.stringify(first.content));
  assert.deepEqual([first.structuredContent.steps, first.structuredContent.cached_steps], [3, 0]);
  // Progress is rate-limited (a few a second): fast steps show as the first.
  assert.ok(progress.some((m) => /^step \d\/3/.test(m)), progress.join("\n"));
  const started = Date.now();
  const again = await callTool(client, "image_build", build);
  assert.equal(again.cached_steps, 3);
  assert.equal(again.digest, first.structuredContent.digest);
  assert.ok(Date.now() - started < 1000, "a fully cached rebuild took a second");
  const more = await callTool(client, "image_build", { ...build, name: "tools-plus", run: [...build.run, "echo v2 > /opt/tools/version"] });
  assert.deepEqual([more.steps, more.cached_steps], [4, 3]);

  const box = await callTool(client, "sandbox_create", { name: "from-template", image: "tools" });
  assert.equal(box.image, "tools");
  const r = await callTool(client, "sandbox_exec", {
    id: box.id,
    command: ". /etc/os-release; echo $PRETTY_NAME; cat /opt/tools/version /etc/tools.conf; echo $TOOLS_HOME $WARREN_IMAGE; pwd; id -u toolsvc >/dev/null && echo user",
  });
  assert.equal(r.stdout, "warren test image\nv1\nbuilt\n/opt/tools yes\n/opt/tools\nuser\n", r.stderr);
  const plus = await callTool(client, "sandbox_create", { name: "from-template-plus", image: "tools-plus" });
  assert.equal((await callTool(client, "sandbox_exec", { id: plus.id, command: "cat /opt/tools/version" })).stdout, "v2\n");

  const failed = await callToolError(client, "image_build", { ...build, name: "broken", run: ["echo about to fail; exit 7"] });
  assert.match(failed, /step 2 .*exit code 7.*about to fail/s);
  assert.match(await callToolError(client, "image_delete", { image: "broken" }), /no image/);
  assert.match(await callToolError(client, "image_build", { ...build, name: "tools" }), /in use by sandbox 'from-template'/);
  assert.match(await callToolError(client, "image_build", { name: "a/b", from: ref, run: ["true"] }), /name/);
  const names = (await callTool(client, "sandbox_list")).sandboxes.map((s) => s.name);
  assert.ok(!names.some((n) => n.startsWith("build-")), `a build sandbox was left: ${names}`);
  const { images } = await callTool(client, "image_list");
  const users = images.find((i) => i.image === ref).used_by;
  for (const u of ["sandbox 'from-image'", "template 'tools'", "template 'tools-plus'"]) assert.ok(users.includes(u), users.join(", "));
  assert.ok(users.some((u) => /^snapshot 'step-/.test(u)), "the cached steps are built on the image");
  const tools = images.find((i) => i.image === "tools");
  assert.equal(tools.layers, 3);
  assert.ok(tools.size_bytes > 0, "a template's size counts its own layers");
  // The snapshot of a template's last step cannot go while the template names it.
  const lastStep = `step-${tools.digest.slice("template:".length, "template:".length + 32)}`;
  assert.match(await callToolError(client, "snapshot_delete", { snapshot: lastStep }), /template 'tools'/);
  for (const id of [box.id, plus.id]) await callTool(client, "sandbox_destroy", { id });
  for (const image of ["tools", "tools-plus"]) await callTool(client, "image_delete", { image });
  // The cached steps are snapshots; they go with snapshot_delete, top first.
  const steps = (await callTool(client, "snapshot_list")).snapshots.filter((s) => s.name.startsWith("step-"));
  for (const s of steps.reverse()) await callTool(client, "snapshot_delete", { snapshot: s.snapshot_id });
}, { timeoutMs: 300_000 });

test("image_list names the users; image_delete is refused while used, then frees the layers", async () => {
  const { images } = await callTool(client, "image_list");
  assert.equal(images.length, 1);
  assert.deepEqual(images[0].used_by, ["sandbox 'from-image'"]);
  const refused = await callToolError(client, "image_delete", { image: ref });
  assert.match(refused, /in use by sandbox 'from-image'/);
  await callTool(client, "sandbox_snapshot", { id: sb.id, name: "image-snap" });
  await callTool(client, "sandbox_destroy", { id: sb.id });
  assert.match(await callToolError(client, "image_delete", { image: ref }), /snapshot 'image-snap'/);
  await callTool(client, "snapshot_delete", { snapshot: "image-snap" });
  const d = await callTool(client, "image_delete", { image: ref });
  assert.equal(d.deleted, true);
  assert.deepEqual(readdirSync(layersDir), []);
  assert.deepEqual((await callTool(client, "image_list")).images, []);
});

test("bad input: clear errors, nothing half-made left behind", async () => {
  // The registry now serves the small image's layer with other bytes than its digest says.
  const hex = smallLayer.slice(7);
  const blobData = join(work, "registry/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  const bytes = readFileSync(blobData);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(blobData, bytes);
  const cases = [
    [{ ref: `${registry}/test/corrupt:1` }, /digest|checksum|gzip|invalid|unexpected/i],
    [{ ref: "-oops" }, /invalid image reference/],
    [{ ref: "UPPER CASE" }, /invalid image reference/],
    [{ ref: `${registry}/test/missing:1` }, /pulling image .*missing/],
    [{ ref: "127.0.0.1:1/test/debian:1" }, /pulling image/],
    [{ ref: "host" }, /nothing to pull/],
  ];
  for (const [args, re] of cases) assert.match(await callToolError(client, "image_pull", args), re);
  assert.match(await callToolError(client, "sandbox_create", { name: "no-image", image: `${registry}/test/missing:1` }), /missing/);
  assert.deepEqual((await callTool(client, "sandbox_list")).sandboxes.filter((s) => s.name === "no-image"), []);
  assert.match(await callToolError(client, "image_delete", { image: "never/pulled:1" }), /no image/);
  assert.deepEqual(readdirSync(layersDir), []);
  assert.deepEqual(readdirSync(join(stateDir, "images", "tmp")), []);
  assert.deepEqual(readdirSync(join(stateDir, "images", "oci", "blobs", "sha256")), []);
});
