interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface CoalescerOptions<T, R> {
  /** Runs one batch; returns one result per item, in order. */
  run(items: T[]): Promise<R[]>;
  /** Items with one key are never in two batches at once, and keep their arrival order. */
  keyOf(item: T): string;
  /** Told about a failed batch before its items are retried one at a time. */
  onBatchError(err: unknown, size: number): void;
  maxBatch?: number;
  maxInflight?: number;
  /**
   * Items that go in batches of their own, with their own limit in flight
   * (`separateMaxInflight`), so a slower kind of item (a send with attachments: a batch that fails
   * as a whole when one attachment was taken) never holds up the others' batches. Their keys
   * still keep one order across both kinds.
   */
  separate?(item: T): boolean;
  /** How many batches of separate items run at once; `maxInflight` unless said. */
  separateMaxInflight?: number;
}

/**
 * Group commit without SQL: concurrent items go to `run` together. Alone, an item runs at once;
 * under load, one batch (one statement, one commit) carries many. A key (a room) is in at most
 * one batch at a time and its items keep their arrival order, and results are delivered in batch
 * order, so each item resolves after every earlier item of its key.
 */
export function createCoalescer<T, R>({ run, keyOf, onBatchError, maxBatch = 256, maxInflight = 2, separate, separateMaxInflight = maxInflight }: CoalescerOptions<T, R>) {
  let queue: Pending<T, R>[] = [];
  const busyKeys = new Set<string>();
  let inflight = 0;
  let separateInflight = 0;
  // While none is queued, the others' batches are built exactly as without `separate`.
  let separateQueued = 0;

  async function runBatch(batch: Pending<T, R>[]) {
    try {
      const results = await run(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // One poisoned item must not fail its neighbours: each is tried alone, in order.
      onBatchError(err, batch.length);
      for (const p of batch) await run([p.item]).then(([result]) => p.resolve(result!), p.reject);
    }
  }

  function pump() {
    fill(false);
    if (separateQueued > 0) fill(true);
  }

  /** Starts batches of one lane (the separate items, or the others) while it has room. */
  function fill(lane: boolean) {
    while ((lane ? separateInflight < separateMaxInflight : inflight < maxInflight) && queue.length) {
      const batch: Pending<T, R>[] = [];
      const rest: Pending<T, R>[] = [];
      const taken = new Set<string>();
      const blocked = new Set<string>();
      const sorting = separateQueued > 0;
      for (const pending of queue) {
        const key = keyOf(pending.item);
        // Once one item of a key waits, every later item of that key waits too: order is kept.
        // An item of the other lane waits here too, so it blocks its key the same way.
        if (busyKeys.has(key) || blocked.has(key) || batch.length >= maxBatch || (sorting && separate!(pending.item) !== lane)) {
          blocked.add(key);
          rest.push(pending);
        } else {
          taken.add(key);
          batch.push(pending);
        }
      }
      if (!batch.length) return;
      queue = rest;
      if (lane) separateQueued -= batch.length;
      if (lane) separateInflight++;
      else inflight++;
      for (const key of taken) busyKeys.add(key);
      void runBatch(batch).finally(() => {
        if (lane) separateInflight--;
        else inflight--;
        for (const key of taken) busyKeys.delete(key);
        pump();
      });
    }
  }

  return {
    submit(item: T): Promise<R> {
      return new Promise((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (separate?.(item)) separateQueued++;
        // An item of a busy key cannot start a batch; skipping the scan keeps a hot room O(n).
        if (!busyKeys.has(keyOf(item))) pump();
      });
    },
  };
}
