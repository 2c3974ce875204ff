// `Git Commit:` of --version and the API's git_commit come from reading the checkout's git files (no git process):
// a plain clone, a linked worktree (whose .git is a file), packed refs and a detached HEAD all give what git says.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { gitCommit } from '../../src/service/version.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'version-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();

test('the commit of a clone, a linked worktree, packed refs and a detached HEAD is what git rev-parse says', () => {
  const repo = path.join(dir, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  writeFileSync(path.join(repo, 'f'), 'one');
  git(repo, 'add', 'f');
  git(repo, 'commit', '-q', '-m', 'one');
  assert.equal(gitCommit(repo), git(repo, 'rev-parse', 'HEAD'));

  const wt = path.join(dir, 'wt');
  git(repo, 'worktree', 'add', '-q', '-b', 'side', wt);
  writeFileSync(path.join(wt, 'f'), 'two');
  git(wt, 'commit', '-q', '-am', 'two');
  assert.notEqual(git(wt, 'rev-parse', 'HEAD'), git(repo, 'rev-parse', 'HEAD'));
  assert.equal(gitCommit(wt), git(wt, 'rev-parse', 'HEAD'));

  git(repo, 'pack-refs', '--all');
  assert.equal(gitCommit(wt), git(wt, 'rev-parse', 'HEAD'), 'worktree branch from packed-refs');
  assert.equal(gitCommit(repo), git(repo, 'rev-parse', 'HEAD'), 'clone branch from packed-refs');

  git(repo, 'checkout', '-q', '--detach');
  assert.equal(gitCommit(repo), git(repo, 'rev-parse', 'HEAD'));
  assert.equal(gitCommit(path.join(dir, 'nowhere')), 'unknown');
});
