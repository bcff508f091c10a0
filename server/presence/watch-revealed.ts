import type { PresenceEvent } from '../../contracts/index.ts';
import type { EventScreen } from '../safety/block-view.ts';

type Watch = (userId: string, listener: (event: PresenceEvent) => void) => () => void;

/**
 * `watch`, plus the watched user's presence as of now whenever it becomes visible to the screen's
 * reader: the opener of a request hears the recipient's presence when they accept, an unblocked
 * partner's when the block goes. Without it the stream stays silent until the partner's next change.
 *
 * The reveal and a change that was on its way from another instance can name the same state:
 * the reader hears it once.
 */
export function watchRevealed(watch: Watch, screen: EventScreen, now: (userId: string) => Promise<PresenceEvent>, onError: (err: unknown) => void = () => {}): Watch {
  return (userId, listener) => {
    let shown: PresenceEvent | undefined;
    const deliver = (event: PresenceEvent) => {
      // A hidden event never reaches the reader (the feed drops it): what they saw is unknown again.
      if (screen.hides(event)) shown = undefined;
      else if (shown !== undefined && shown.online === event.online && shown.last_seen_at === event.last_seen_at) return;
      else shown = event;
      listener(event);
    };
    const unwatch = watch(userId, deliver);
    const off = screen.onChange((before, after) => {
      if (!before.presenceOf(userId) && after.presenceOf(userId)) now(userId).then(deliver, onError);
    });
    return () => {
      unwatch();
      off();
    };
  };
}
