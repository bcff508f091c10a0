import { describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../contracts/index.ts';
import { watchRevealed } from '../server/presence/watch-revealed.ts';
import type { EventScreen, Visibility, VisibilityChange } from '../server/safety/block-view.ts';

/** A screen whose visibility of presence the test flips, telling its listeners as the block view does. */
function flippableScreen() {
  let visible = false;
  const listeners = new Set<VisibilityChange>();
  const visibility = (presence: boolean): Visibility => ({ severed: () => false, presenceOf: () => presence, receiptsOf: () => true, typingOf: () => true });
  const screen: EventScreen = {
    hides: (event) => event.type === 'presence' && !visible,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    release() {},
  };
  return {
    screen,
    reveal() {
      visible = true;
      for (const listener of listeners) listener(visibility(false), visibility(true));
    },
  };
}

const online: PresenceEvent = { type: 'presence', user: 'b', online: true, last_seen_at: null };
const offline: PresenceEvent = { type: 'presence', user: 'b', online: false, last_seen_at: '2026-12-05T05:00:00.000Z' };

describe('a partner revealed to a reader', () => {
  it('a change that arrives with the reveal and names the same state is heard once', async () => {
    const { screen, reveal } = flippableScreen();
    let push: (event: PresenceEvent) => void = () => {};
    const watch = watchRevealed((_user, listener) => ((push = listener), () => {}), screen, async () => online);
    const heard: PresenceEvent[] = [];
    watch('b', (event) => void (screen.hides(event) || heard.push(event)));
    push(online); // hidden: the request is not answered yet
    reveal();
    push(online); // the same change, late from another instance
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard).toEqual([online]);
    push(offline);
    push(online);
    expect(heard).toEqual([online, offline, online]);
  });
});
