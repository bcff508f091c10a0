/** The bench's sections, in the order a full run runs them (and the performance page lists them). */
export const SECTION_ORDER = ['connections', 'send', 'live', 'history', 'http', 'cross', 'engines', 'notify', 'inbox', 'inbox-features', 'push', 'safety', 'files', 'idle', 'storm'] as const;
