/**
 * The bench's load comes from a few users over many sockets, as no real user's does: the per-user
 * caps on sockets, subscriptions and inbox streams are lifted for it (like the rate limits), and the
 * abuse section, which measures those caps, puts them back.
 */
export const PER_USER_CAPS_OFF = { WS_MAX_SOCKETS_PER_USER: '1000000', WS_MAX_SUBSCRIPTIONS_PER_USER: '100000000', INBOX_STREAMS_PER_USER: '1000000' } as const;

/** The defaults of server/infra/config/config.ts, for the section that measures them. */
export const PER_USER_CAPS_DEFAULT = { WS_MAX_SOCKETS_PER_USER: '20', WS_MAX_SUBSCRIPTIONS_PER_USER: '1000', INBOX_STREAMS_PER_USER: '5' } as const;
