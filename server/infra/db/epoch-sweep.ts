import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Every `periodMs`, reads a one-row counter table (`<table>.n`, id 1) and calls `onMoved` when it
 * changed since the last look: the fallback of a view kept by bus events, which an engine may lose.
 * The counter is read before `onMoved` reads what it covers, so whatever moved it is in that read;
 * the first look always calls `onMoved` (what was loaded at start predates any known value).
 * One look at a time; `beforeEach` runs first on every tick (housekeeping that needs no query).
 */
export function startEpochSweep(options: {
  sql: ReturnType<EntityManager['getConnection']>;
  table: 'safety_epoch' | 'ban_epoch';
  periodMs: number;
  onMoved(): Promise<void>;
  onError(err: unknown): void;
  beforeEach?(): void;
}): { stop(): void } {
  const { sql, table, periodMs, onMoved, onError, beforeEach } = options;
  let epoch: string | undefined;
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void (async () => {
      beforeEach?.();
      const [row] = await sql.execute<Array<{ n: string }>>(`select n from ${table} where id = 1`);
      const seen = String(row?.n ?? 0);
      if (seen !== epoch) await onMoved();
      epoch = seen;
    })()
      .catch(onError)
      .finally(() => (sweeping = false));
  }, periodMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
