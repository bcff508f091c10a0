import { expect, it } from 'vitest';
import { createCoalescer } from '../server/messages/send-coalescer.ts';

interface Item {
  room: string;
  n: number;
  slow?: boolean;
}

/** A coalescer whose batches wait until released, recording each batch as it starts. */
function gated(withSeparate = true, separateMaxInflight?: number) {
  const batches: Item[][] = [];
  const gates: Array<() => void> = [];
  const coalescer = createCoalescer<Item, number>({
    keyOf: (i) => i.room,
    onBatchError: () => undefined,
    ...(withSeparate && { separate: (i: Item) => i.slow === true }),
    ...(separateMaxInflight !== undefined && { separateMaxInflight }),
    async run(items) {
      batches.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((i) => i.n);
    },
  });
  const releaseAll = async () => {
    while (gates.length) {
      gates.splice(0).forEach((open) => open());
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  return { coalescer, batches, releaseAll };
}

it('separate items are batched only with each other, beside the others, and a room keeps its order across both', async () => {
  const { coalescer, batches, releaseAll } = gated();
  const done: number[] = [];
  const submit = (item: Item) => coalescer.submit(item).then((n) => done.push(n));
  const all = [
    submit({ room: 'a', n: 1 }),
    submit({ room: 'b', n: 2, slow: true }),
    submit({ room: 'c', n: 3 }),
    submit({ room: 'a', n: 4, slow: true }),
    submit({ room: 'a', n: 5 }),
    submit({ room: 'd', n: 6, slow: true }),
  ];
  await new Promise((r) => setTimeout(r, 0));
  // The first batches start at once, each of one kind; room a's slow send waits for its text send.
  expect(batches.map((b) => b.map((i) => i.n))).toEqual([[1], [2], [3], [6]]);
  await releaseAll();
  await Promise.all(all);
  expect(batches.every((b) => b.every((i) => (i.slow === true) === (b[0]!.slow === true)))).toBe(true);
  expect(done.filter((n) => [1, 4, 5].includes(n))).toEqual([1, 4, 5]);
});

it('without separate items queued, batches are exactly those of a coalescer without the option', async () => {
  const shapes = async (withSeparate: boolean) => {
    const { coalescer, batches, releaseAll } = gated(withSeparate);
    const all = Array.from({ length: 12 }, (_, n) => coalescer.submit({ room: 'abc'[n % 3]!, n }));
    await new Promise((r) => setTimeout(r, 0));
    await releaseAll();
    await Promise.all(all);
    return batches.map((b) => b.map((i) => i.n));
  };
  expect(await shapes(true)).toEqual(await shapes(false));
});

it('separate items can be held to fewer batches at once than the others; those that wait meanwhile go in one batch', async () => {
  const { coalescer, batches, releaseAll } = gated(true, 1);
  const all = Array.from({ length: 8 }, (_, n) => coalescer.submit({ room: `r${n}`, n, slow: n % 2 === 1 }));
  await new Promise((r) => setTimeout(r, 0));
  // Two batches of the others at once (the default), one of the separate items.
  expect(batches.map((b) => b.map((i) => i.n))).toEqual([[0], [1], [2]]);
  await releaseAll();
  await Promise.all(all);
  expect(batches.filter((b) => b[0]!.slow).map((b) => b.map((i) => i.n))).toEqual([[1], [3, 5, 7]]);
});
