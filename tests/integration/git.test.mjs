// sandbox_git_commit: the sandbox's workspace changes become a commit on warren/<name>
// in the user's repository, and nothing else of the user's repository changes.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import {
  callTool,
  callToolError,
  connectStdio,
  fileTree,
  git,
  makeGitRepo,
  skipUnlessRoot,
  sweepSandboxesAtEnd,
  tempStateDir,
  test,
} from "./lib/harness.mjs";

skipUnlessRoot();

const stateDir = tempStateDir();
sweepSandboxesAtEnd(stateDir);
const binary = Buffer.from([0, 1, 2, 250, 251, 252, 10, 13, 0]);
const repo = makeGitRepo({
  "README.md": "hello\n",
  ".gitignore": "*.log\nbuild/\n",
  "src/main.c": "int main(void) { return 0; }\n",
  "src/deep/nested/keep.txt": "keep\n",
  "src/deep/nested/gone.txt": "to be deleted\n",
  "docs/old-name.md": "a document that moves\n".repeat(20),
  "run.sh": { content: "#!/bin/sh\necho run\n", mode: 0o644 },
  "assets/blob.bin": binary,
  "dir-to-file/inner.txt": "inner\n",
});
// The user's own uncommitted work, which must stay exactly as it is.
writeFileSync(join(repo, "README.md"), "hello\nuser's dirty edit\n");
writeFileSync(join(repo, "untracked-by-user.txt"), "mine\n");
const userHead = git(repo, "rev-parse", "HEAD");
const userStatus = git(repo, "status", "--porcelain");
const userIndex = readFileSync(join(repo, ".git", "index"));

const client = await connectStdio({ stateDir });
const sb = await callTool(client, "sandbox_create", { name: "gitwork", repo });
const sh = (command) => callTool(client, "sandbox_exec", { id: sb.id, command });

test("a commit holds exactly the sandbox's changes", async () => {
  const r = await sh(
    [
      "set -e",
      "echo 'int main(void) { return 1; }' > src/main.c", // modified
      "mkdir -p src/new/dir && echo fresh > src/new/dir/file.txt", // added, nested
      "rm src/deep/nested/gone.txt", // deleted
      "git mv docs/old-name.md docs/new-name.md 2>/dev/null || mv docs/old-name.md docs/new-name.md", // renamed
      "chmod +x run.sh", // mode change
      "printf '\\000\\377\\001binary' > assets/new.bin", // binary added
      "ln -s src/main.c link-to-main", // symlink
      "echo noise > debug.log && mkdir -p build && echo o > build/out.o", // ignored
      "rm -r dir-to-file && echo now-a-file > dir-to-file", // directory replaced by a file
    ].join("\n"),
  );
  assert.equal(r.exit_code, 0, r.stderr);
  const c = await callTool(client, "sandbox_git_commit", { id: sb.id, message: "sandbox work" });
  assert.equal(c.branch, "warren/gitwork");
  assert.equal(c.parent, userHead);
  assert.equal(git(repo, "rev-parse", "warren/gitwork"), c.commit);
  const changes = git(repo, "diff", "--name-status", "-M", userHead, c.commit).split("\n").sort();
  assert.deepEqual(changes, [
    "A\tassets/new.bin",
    "A\tdir-to-file",
    "A\tlink-to-main",
    "A\tsrc/new/dir/file.txt",
    "D\tdir-to-file/inner.txt",
    "D\tsrc/deep/nested/gone.txt",
    "M\trun.sh",
    "M\tsrc/main.c",
    "R100\tdocs/old-name.md\tdocs/new-name.md",
  ]);
  assert.equal(git(repo, "ls-tree", c.commit, "run.sh").split(" ")[0], "100755");
  assert.equal(git(repo, "ls-tree", c.commit, "link-to-main").split(" ")[0], "120000");
  assert.equal(git(repo, "cat-file", "-p", `${c.commit}:link-to-main`), "src/main.c");
  assert.equal(git(repo, "cat-file", "-s", `${c.commit}:assets/new.bin`), "9");
  assert.equal(git(repo, "cat-file", "-s", `${c.commit}:assets/blob.bin`), String(binary.length));
  assert.ok(c.files_changed >= 8, JSON.stringify(c));
  assert.ok(c.insertions >= 1 && c.deletions >= 1, JSON.stringify(c));
  // The user's repository: same HEAD, same index, same dirty working tree.
  assert.equal(git(repo, "rev-parse", "HEAD"), userHead);
  assert.equal(git(repo, "status", "--porcelain"), userStatus);
  assert.deepEqual(readFileSync(join(repo, ".git", "index")), userIndex);
  assert.equal(readFileSync(join(repo, "README.md"), "utf8"), "hello\nuser's dirty edit\n");
});

test("a second commit builds on the first and holds only the new change", async () => {
  const first = git(repo, "rev-parse", "warren/gitwork");
  await sh("echo second >> src/new/dir/file.txt");
  const c = await callTool(client, "sandbox_git_commit", {
    id: sb.id,
    message: "second",
    author_name: "Agent Smith",
    author_email: "agent@example.com",
  });
  assert.equal(c.parent, first);
  assert.equal(git(repo, "diff", "--name-only", first, c.commit), "src/new/dir/file.txt");
  assert.equal(git(repo, "log", "-1", "--format=%an <%ae>", c.commit), "Agent Smith <agent@example.com>");
  assert.equal(git(repo, "log", "-1", "--format=%s", c.commit), "second");
});

test("paths limits the commit; another branch; nothing to commit is an error", async () => {
  await sh("echo a > only-this.txt && echo b > not-this.txt");
  const c = await callTool(client, "sandbox_git_commit", {
    id: sb.id,
    message: "partial",
    branch: "feature/partial",
    paths: ["only-this.txt"],
  });
  assert.equal(c.branch, "feature/partial");
  assert.equal(git(repo, "diff", "--name-only", userHead, c.commit).split("\n").includes("not-this.txt"), false);
  assert.equal(git(repo, "show", `${c.commit}:only-this.txt`), "a");
  const again = await callToolError(client, "sandbox_git_commit", {
    id: sb.id,
    message: "again",
    branch: "feature/partial",
    paths: ["only-this.txt"],
  });
  assert.match(again, /nothing to commit/);
  assert.match(await callToolError(client, "sandbox_git_commit", { id: sb.id, message: "x", branch: "bad..name" }), /not a valid branch name/);
  assert.match(await callToolError(client, "sandbox_git_commit", { id: sb.id }), /message/);
});

test("/workspace is a git working tree: history, status, branch, stash, without writing the user's repository", async () => {
  const repo2 = makeGitRepo({ "a.txt": "one\n" });
  git(repo2, "commit", "-q", "--allow-empty", "-m", "second on main");
  const userHead2 = git(repo2, "rev-parse", "HEAD");
  const before = fileTree(repo2);
  const box = await callTool(client, "sandbox_create", { name: "inner", repo: repo2 });
  const run = async (command) => {
    const r = await callTool(client, "sandbox_exec", { id: box.id, command });
    assert.equal(r.exit_code, 0, `${command}: ${r.stderr}`);
    return r.stdout;
  };
  assert.equal(await run("git status --porcelain"), "");
  assert.equal(await run("git rev-parse --abbrev-ref HEAD"), "warren/inner\n");
  assert.equal(await run("git log --format=%s"), "second on main\ninitial\n");
  await run("echo two >> a.txt && git stash -q && test \"$(cat a.txt)\" = one && git stash pop -q && git diff --stat | grep -q a.txt");
  await run("git branch side && git branch --list | grep -q side");
  // The user's objects are there to read, never to write.
  const ro = await callTool(client, "sandbox_exec", { id: box.id, command: "touch .git/repo-objects/x" });
  assert.notEqual(ro.exit_code, 0);
  assert.match(ro.stderr, /Read-only/);
  assert.deepEqual(fileTree(repo2), before);
  assert.equal(git(repo2, "rev-parse", "HEAD"), userHead2);

  // Two commits made inside, a third change left uncommitted: three commits on the branch.
  await run("git -c user.name='In Side' -c user.email=in@side.test commit -qam 'inside one' && " +
    "echo b > b.txt && git add b.txt && GIT_AUTHOR_DATE='2001-02-03T04:05:06Z' git commit -qm 'inside two' && echo three > c.txt");
  const c = await callTool(client, "sandbox_git_commit", { id: box.id, message: "what was left" });
  const log = git(repo2, "log", "--format=%s|%an|%ad", "--date=iso-strict", `${userHead2}..${c.commit}`).split("\n");
  assert.equal(log.length, 3, log.join("\n"));
  assert.equal(log[0].split("|")[0], "what was left");
  assert.deepEqual(log[1].split("|").slice(0, 1), ["inside two"]);
  assert.match(log[1], /2001-02-03T04:05:06/);
  assert.deepEqual(log[2].split("|").slice(0, 2), ["inside one", "In Side"]);
  assert.equal(git(repo2, "rev-parse", `${c.commit}~3`), userHead2);
  assert.equal(git(repo2, "rev-parse", "warren/inner"), c.commit);
  assert.equal(git(repo2, "show", `${c.commit}:c.txt`), "three");
  assert.equal(c.parent, git(repo2, "rev-parse", `${c.commit}~1`));
  // The sandbox is on the same commit now, with nothing left to commit.
  assert.equal((await run("git rev-parse HEAD; git status --porcelain")).trim(), c.commit);
  assert.match(await callToolError(client, "sandbox_git_commit", { id: box.id, message: "again" }), /nothing to commit/);
  // The user's HEAD, index and working tree did not move.
  assert.equal(git(repo2, "rev-parse", "HEAD"), userHead2);
  assert.equal(git(repo2, "status", "--porcelain"), "");

  // A fork keeps the sandbox's git state.
  await callTool(client, "sandbox_snapshot", { id: box.id, name: "inner-snap" });
  const fork = await callTool(client, "sandbox_restore", { snapshot: "inner-snap", name: "inner-fork" });
  const f = await callTool(client, "sandbox_exec", { id: fork.id, command: "git log -1 --format=%s; git status --porcelain" });
  assert.equal(f.stdout, "what was left\n");
  await callTool(client, "sandbox_destroy", { id: fork.id });
  await callTool(client, "sandbox_destroy", { id: box.id });
});

test("a sandbox without a git repository cannot commit", async () => {
  const plain = await callTool(client, "sandbox_create", { name: "nogit" });
  assert.match(await callToolError(client, "sandbox_git_commit", { id: plain.id, message: "x" }), /not created from a git repository/);
  await callTool(client, "sandbox_destroy", { id: plain.id });
  await callTool(client, "sandbox_destroy", { id: sb.id });
});
