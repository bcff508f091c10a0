import type { PresenceEvent } from '../../contracts/index.ts';
import type { EventScreen } from '../safety/block-view.ts';

type Watch = (userId: string, listener: (event: PresenceEvent) => void) => () => void;

/**
 * `watch`, plus the watched user's presence as of now whenever it becomes visible to the screen's
 * reader: the opener of a request hears the recipient's presence when they accept, an unblocked
 * partner's when the block goes. Without it the stream stays silent until the partner's next change.
 */
export function watchRevealed(watch: Watch, screen: EventScreen, now: (userId: string) => Promise<PresenceEvent>, onError: (err: unknown) => void = () => {}): Watch {
  return (userId, listener) => {
    const unwatch = watch(userId, listener);
    const off = screen.onChange((before, after) => {
      if (!before.presenceOf(userId) && after.presenceOf(userId)) now(userId).then(listener, onError);
    });
    return () => {
      unwatch();
      off();
    };
  };
}
