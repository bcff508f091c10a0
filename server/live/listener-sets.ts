/** Listeners per key, in this process. */
export interface ListenerSets<K, E> {
  publish(key: K, event: E): void;
  /** Returns the unsubscribe function. */
  subscribe(key: K, listener: (event: E) => void): () => void;
  /** Number of live listeners, for readiness and metrics. */
  count(): number;
}

type Listener<E> = (event: E) => void;

export function createListenerSets<K, E>(onListenerError: (err: unknown) => void): ListenerSets<K, E> {
  // Most keys (a room, a user's presence) have one or two listeners: a key with one holds it
  // alone, and a Set is made at the second. An idle socket's subscriptions are most of its memory.
  const sets = new Map<K, Listener<E> | Set<Listener<E>>>();
  let count = 0;
  const call = (listener: Listener<E>, event: E) => {
    // One broken listener must not starve the others of the event.
    try {
      listener(event);
    } catch (err) {
      onListenerError(err);
    }
  };
  return {
    publish(key, event) {
      const listeners = sets.get(key);
      if (listeners === undefined) return;
      if (typeof listeners === 'function') return call(listeners, event);
      for (const listener of listeners) call(listener, event);
    },
    subscribe(key, listener) {
      const held = sets.get(key);
      if (held === undefined) sets.set(key, listener);
      else if (typeof held === 'function') sets.set(key, new Set([held, listener]));
      else held.add(listener);
      count++;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        count--;
        const now = sets.get(key);
        if (now === listener) sets.delete(key);
        else if (typeof now === 'object') {
          now.delete(listener);
          if (now.size === 1) sets.set(key, now.values().next().value!);
          else if (now.size === 0) sets.delete(key);
        }
      };
    },
    count: () => count,
  };
}
