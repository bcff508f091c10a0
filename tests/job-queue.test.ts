import { afterEach, expect, vi } from 'vitest';
import { createJobQueue } from '../server/infra/jobs/job-queue.ts';
import { closeOrm, createOrm } from '../server/infra/db/orm.ts';
import { appTest } from './support/test-app.ts';

const it = appTest(import.meta.filename);
afterEach(() => vi.restoreAllMocks());

it('arming the claim timer while the clock ticks prints no warning on the operator’s console', async ({ t }) => {
  const orm = await createOrm({ clientUrl: t.databaseUrl, poolMax: 1 });
  const errors: unknown[] = [];
  const queue = createJobQueue({ sql: orm.em.getConnection(), onError: (err) => errors.push(err) });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    // Each read of the clock a millisecond after the one before, as on a busy machine now and then.
    let now = Date.now();
    vi.spyOn(Date, 'now').mockImplementation(() => ++now);
    queue.start();
    vi.restoreAllMocks();
    // Node emits a warning on a later tick.
    await new Promise((r) => setTimeout(r, 10));
    expect(warnings).toEqual([]);
  } finally {
    process.off('warning', onWarning);
    await queue.close();
    await closeOrm(orm, 5_000);
  }
  expect(errors).toEqual([]);
});
