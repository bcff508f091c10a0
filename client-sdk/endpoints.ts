/**
 * The addresses of one service's instances, used one at a time: the client stays on an instance
 * while it answers, and moves to the next (wrapping round) when its WebSocket drops or an HTTP call
 * gets no answer or a 503. Any instance serves any client and resumes from any event id, so moving
 * costs nothing but the reconnect.
 */
export interface Endpoints {
  /** The base URL in use now, without a trailing slash. */
  current(): string;
  /** `base` failed; move on unless another failure already moved the client away from it. */
  failed(base: string): void;
}

export function createEndpoints(urls: string | readonly string[]): Endpoints {
  const bases = (typeof urls === 'string' ? [urls] : [...urls]).map((u) => u.replace(/\/+$/, ''));
  if (!bases.length) throw new TypeError('createChatClient: `url` needs at least one address');
  let i = 0;
  return {
    current: () => bases[i]!,
    failed(base) {
      if (bases[i] === base) i = (i + 1) % bases.length;
    },
  };
}

/**
 * A `fetch` for tRPC's HTTP link, which builds its URLs on `linkBase`: each call goes to the
 * current instance instead, and a call that gets no answer, or 503 (shutting down), moves the
 * client on. The failed call still fails: only the caller knows whether it may be repeated (the
 * outbox repeats sends with their clientId, so they are stored once).
 */
export function failoverFetch(endpoints: Endpoints, linkBase: string): typeof fetch {
  return async (input, init) => {
    const base = endpoints.current();
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    try {
      const res = await fetch(base + url.slice(linkBase.length), init);
      if (res.status === 503) endpoints.failed(base);
      return res;
    } catch (err) {
      if (!init?.signal?.aborted) endpoints.failed(base);
      throw err;
    }
  };
}
