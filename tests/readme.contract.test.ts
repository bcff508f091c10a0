import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';

const readme = () => readFile(new URL('../README.md', import.meta.url), 'utf8');

it('the README is a user’s document: at most 400 lines, the run and test commands and the demo URL on its first screen', async () => {
  const text = await readme();
  const lines = text.split('\n');
  expect(lines.length).toBeLessThanOrEqual(400);
  const firstScreen = lines.slice(0, 30).join('\n');
  expect(firstScreen).toContain('npm ci');
  expect(firstScreen).toContain('npm start');
  expect(firstScreen).toContain('npm test');
  expect(firstScreen).toContain('/demo/');
});

it('the README names no commits, issues or development history', async () => {
  const text = await readme();
  expect(text).not.toMatch(/\b(commit|run of|build) [0-9a-f]{7,40}\b/i);
  expect(text).not.toMatch(/\bissues? #?\d+/i);
  expect(text).not.toMatch(/\bthis session\b/i);
});

it('the performance page is generated from the committed results', async () => {
  const page = await readFile(new URL('../docs/performance.md', import.meta.url), 'utf8');
  expect(page).toContain('written by `npm run bench`');
  expect(page).toMatch(/^## Method$/m);
  expect(page).toMatch(/^## How to reproduce$/m);
  expect(page).toMatch(/^\| Scenario \| Surface/m);
});

it('examples take the base URL from $BASE, and no link leaves the repository', async () => {
  const text = await readme();
  expect(text).toMatch(/^BASE=http:\/\/127\.0\.0\.1:3000$/m);
  const shell = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
  expect(shell).not.toMatch(/(localhost|127\.0\.0\.1):3000\/|:3000\/\S/);
  for (const [, target] of text.matchAll(/\]\(([^)]+)\)/g)) {
    if (/^(https?:|#)/.test(target!)) continue;
    expect(target, 'a link inside the repository').not.toMatch(/^\.\.\//);
    await expect(readFile(new URL(`../${target}`, import.meta.url)), target).resolves.toBeDefined();
  }
  expect(text).not.toContain('../shared');
});
