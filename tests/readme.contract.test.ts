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
