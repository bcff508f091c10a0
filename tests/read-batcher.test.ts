import { describe, expect, it } from 'vitest';
import { createReadBatcher } from '../server/messages/read-batcher.ts';

/** A batcher whose reads double their input and record each batch they were given. */
function doubling(maxBatch?: number) {
  const batches: number[][] = [];
  const batcher = createReadBatcher<number, number>({
    keyOf: String,
    run: async (queries) => {
      batches.push(queries);
      return queries.map((q) => q * 2);
    },
    ...(maxBatch ? { maxBatch } : {}),
  });
  return { batcher, batches };
}

describe('read batcher', () => {
  it('reads asked for in one turn run together, and an identical ask is read once', async () => {
    const { batcher, batches } = doubling();
    expect(await Promise.all([1, 2, 1, 3].map((q) => batcher.load(q)))).toEqual([2, 4, 2, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('an ask made after a read started waits for a read of its own', async () => {
    const { batcher, batches } = doubling();
    const first = batcher.load(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await Promise.all([first, batcher.load(1)])).toEqual([2, 2]);
    expect(batches).toEqual([[1], [1]]);
  });

  it('a large turn is split into reads of at most maxBatch distinct asks', async () => {
    const { batcher, batches } = doubling(4);
    const asks = Array.from({ length: 10 }, (_, i) => i);
    expect(await Promise.all(asks.map((q) => batcher.load(q)))).toEqual(asks.map((q) => q * 2));
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
  });

  it('a failed read rejects every ask it carried, and the next turn reads afresh', async () => {
    let fail = true;
    const batcher = createReadBatcher<number, number>({
      keyOf: String,
      run: async (queries) => {
        if (fail) throw new Error('database away');
        return queries;
      },
    });
    const results = await Promise.allSettled([batcher.load(1), batcher.load(2), batcher.load(1)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    fail = false;
    expect(await batcher.load(1)).toBe(1);
  });
});
