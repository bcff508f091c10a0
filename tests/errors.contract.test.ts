import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { PARLEY_ERROR_CODES } from '../contracts/index.ts';
import { ERROR_MAP } from '../server/transport/errors/transport-codes.ts';

it('the API reference’s error table lists every code with exactly the mapped HTTP status, tRPC code and WS close code', async () => {
  const readme = await readFile(new URL('../docs/api.md', import.meta.url), 'utf8');
  const section = readme.split(/^## Errors$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows = section
    .split('\n')
    .filter((line) => /^\|\s*`[A-Z_]+`/.test(line))
    .map((line) => line.split('|').map((cell) => cell.trim().replaceAll('`', '')))
    .map(([, code, http, trpc, ws]) => [code, { http: Number(http), trpc, wsClose: Number(ws) }]);
  expect(Object.fromEntries(rows)).toEqual(ERROR_MAP);
  expect(rows.map(([code]) => code)).toEqual([...PARLEY_ERROR_CODES].sort((a, b) => Object.keys(ERROR_MAP).indexOf(a) - Object.keys(ERROR_MAP).indexOf(b)));
});

it('WS close codes follow the convention: 4000-4499 retry (5xx, 429), 4500-4999 terminal, or an RFC 6455 code', () => {
  for (const [code, { wsClose, http }] of Object.entries(ERROR_MAP)) {
    if (wsClose < 4000) expect([1001, 1009], code).toContain(wsClose);
    else if (http >= 500 || http === 429) expect(wsClose, code).toBeLessThan(4500);
    else expect(wsClose, code).toBeGreaterThanOrEqual(4500);
  }
});
