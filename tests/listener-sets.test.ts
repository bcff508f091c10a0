import { describe, expect, it } from 'vitest';
import { createListenerSets } from '../server/live/listener-sets.ts';

describe('listener sets', () => {
  it('a key hears every listener subscribed to it, whatever order they leave in', () => {
    const errors: unknown[] = [];
    const sets = createListenerSets<string, number>((err) => errors.push(err));
    const heard: string[] = [];
    const listener = (name: string) => (event: number) => void heard.push(`${name}${event}`);
    const leaveA = sets.subscribe('k', listener('a'));
    sets.publish('k', 1);
    const leaveB = sets.subscribe('k', listener('b'));
    const leaveC = sets.subscribe('k', listener('c'));
    sets.subscribe('other', listener('o'));
    sets.publish('k', 2);
    leaveB();
    leaveB();
    sets.publish('k', 3);
    leaveA();
    sets.publish('k', 4);
    leaveC();
    sets.publish('k', 5);
    const leaveD = sets.subscribe('k', listener('d'));
    sets.publish('k', 6);
    expect(heard).toEqual(['a1', 'a2', 'b2', 'c2', 'a3', 'c3', 'c4', 'd6']);
    expect(sets.count()).toBe(2);
    leaveD();
    expect(sets.count()).toBe(1);
    expect(errors).toEqual([]);
  });

  it('a listener that throws does not keep the event from the others', () => {
    const errors: unknown[] = [];
    const sets = createListenerSets<string, number>((err) => errors.push(err));
    const heard: number[] = [];
    sets.subscribe('k', () => {
      throw new Error('broken');
    });
    sets.subscribe('k', (event) => void heard.push(event));
    sets.publish('k', 7);
    expect(heard).toEqual([7]);
    expect(errors).toEqual([new Error('broken')]);
  });
});
