/**
 * A per-user count of things held at once in this process (sockets, subscriptions, streams). A rate
 * limit bounds how fast a user acts; this bounds what one user keeps alive, whatever the rate.
 */
export interface UserSlots {
  /** One slot for `userId`, or undefined when they hold `max` already; call the release once done (idempotent). */
  take(userId: string): (() => void) | undefined;
  held(userId: string): number;
  readonly max: number;
}

export function createUserSlots(max: number): UserSlots {
  const counts = new Map<string, number>();
  return {
    max,
    held: (userId) => counts.get(userId) ?? 0,
    take(userId) {
      const n = counts.get(userId) ?? 0;
      if (n >= max) return undefined;
      counts.set(userId, n + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = counts.get(userId)! - 1;
        if (left > 0) counts.set(userId, left);
        else counts.delete(userId);
      };
    },
  };
}
