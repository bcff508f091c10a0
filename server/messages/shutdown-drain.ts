/** Counts work that must finish before the database closes (sends, on shutdown). */
export interface ShutdownDrain {
  track<T>(work: Promise<T>): Promise<T>;
  /** Resolves when nothing is in flight, or after `timeoutMs`; true if drained. */
  drain(timeoutMs: number): Promise<boolean>;
}

export function createShutdownDrain(): ShutdownDrain {
  let count = 0;
  let idle: (() => void) | null = null;
  return {
    async track(work) {
      count++;
      try {
        return await work;
      } finally {
        if (--count === 0) idle?.();
      }
    },
    drain(timeoutMs) {
      if (count === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        idle = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
    },
  };
}
