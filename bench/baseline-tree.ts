/**
 * A checkout of another commit to run a server from, for back-to-back comparisons: a detached git
 * worktree under the temporary directory, kept between runs (a second run of the same ref reuses
 * it). Its dependencies are this checkout's `node_modules` when every package it names is installed
 * here at its version (no install at all), else its own `npm ci` without install scripts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR } from './proc.ts';

const ROOT = join(BENCH_DIR, '..');
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

export interface Tree {
  dir: string;
  /** The short commit the ref named. */
  commit: string;
}

/** The packages a checkout names in package.json, with their versions. */
function wanted(dir: string): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  return { ...pkg.dependencies, ...pkg.devDependencies };
}

function installedHere(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

export function prepareTree(ref: string, log: (line: string) => void = (l) => console.error(l)): Tree {
  const commit = git(ROOT, 'rev-parse', '--short', `${ref}^{commit}`);
  const dir = join(tmpdir(), `parley-baseline-${commit}`);
  if (!existsSync(join(dir, 'package.json'))) {
    log(`bench: checking out ${ref} (${commit}) in ${dir}`);
    git(ROOT, 'worktree', 'add', '--detach', '--force', dir, commit);
  }
  if (!existsSync(join(dir, 'node_modules'))) {
    const missing = Object.entries(wanted(dir)).filter(([name, version]) => installedHere(name) !== version);
    if (!missing.length) {
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    } else {
      log(`bench: npm ci in ${dir} (${missing.length} packages differ from this checkout's, e.g. ${missing[0]![0]})`);
      execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    }
  }
  return { dir, commit };
}

/** This checkout's commit, with `+` when server code has local edits. */
export function thisCommit(): string {
  try {
    const dirty = git(ROOT, 'status', '--porcelain', 'server', 'contracts') !== '';
    return `${git(ROOT, 'rev-parse', '--short', 'HEAD')}${dirty ? '+' : ''}`;
  } catch {
    return 'this checkout';
  }
}
