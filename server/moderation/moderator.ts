import { ParleyError, type ModerationRequest } from '../../contracts/index.ts';
import { createBlocklist } from './blocklist.ts';
import { createHookClient, type HookClient } from './hook-client.ts';

/** The content to store for a send or an edit, or CONTENT_REJECTED. */
export type Moderate = (candidate: ModerationRequest) => Promise<string>;

export interface ModeratorOptions {
  hook?: { url: string; secret: string | undefined; timeoutMs: number; concurrency: number } | undefined;
  fail: 'open' | 'closed';
  blocklist: readonly string[];
  blocklistAction: 'reject' | 'mask';
  maxChars: number;
  /** A hook failure or timeout, and what was done about it. */
  onHookFailure(err: unknown, outcome: 'open' | 'closed'): void;
  /** Each decision, for metrics. */
  onOutcome?(outcome: 'allowed' | 'rejected' | 'rewritten' | 'failed_open' | 'failed_closed'): void;
}

export interface Moderator {
  moderate: Moderate;
  close(): void;
}

const rejected = (reason: string | undefined) => new ParleyError('CONTENT_REJECTED', reason || 'This message was not accepted.', reason ? { reason } : {});

/**
 * The checks a send or an edit passes before it is stored: the word list first (local, cheap; a
 * rejection spares the hook a call, a mask is what the hook then sees), then the hook. Nothing
 * configured: no moderator at all, so the send path has not even an await more.
 */
export function createModerator({ hook, fail, blocklist: words, blocklistAction, maxChars, onHookFailure, onOutcome }: ModeratorOptions): Moderator | undefined {
  const blocklist = createBlocklist(words);
  const client: HookClient | undefined = hook && createHookClient(hook);
  if (!blocklist && !client) return undefined;

  async function askHook(candidate: ModerationRequest): Promise<string> {
    let verdict;
    try {
      verdict = await client!.ask(candidate);
      if (verdict.verdict === 'rewrite' && (!verdict.content.trim() || verdict.content.length > maxChars)) {
        throw new Error(`The moderation hook rewrote the content to ${verdict.content.length} characters (1 to ${maxChars} allowed).`);
      }
    } catch (err) {
      onHookFailure(err, fail);
      onOutcome?.(fail === 'open' ? 'failed_open' : 'failed_closed');
      if (fail === 'open') return candidate.content;
      throw new ParleyError('CONTENT_REJECTED', 'This message could not be checked; try again later.', { unchecked: true });
    }
    if (verdict.verdict === 'reject') {
      onOutcome?.('rejected');
      throw rejected(verdict.reason);
    }
    onOutcome?.(verdict.verdict === 'rewrite' ? 'rewritten' : 'allowed');
    return verdict.verdict === 'rewrite' ? verdict.content : candidate.content;
  }

  return {
    async moderate(candidate) {
      let content = candidate.content;
      if (blocklist?.matches(content)) {
        if (blocklistAction === 'reject') {
          onOutcome?.('rejected');
          throw rejected('This message contains a word that is not allowed here.');
        }
        content = blocklist.mask(content);
      }
      if (client) return askHook(content === candidate.content ? candidate : { ...candidate, content });
      onOutcome?.(content === candidate.content ? 'allowed' : 'rewritten');
      return content;
    },
    close: () => client?.close(),
  };
}
