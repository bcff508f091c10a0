import { expect, it } from 'vitest';
import { StopSignal } from '../server/transport/trpc/stop-signal.ts';

it('a stop calls its abort listeners once, as an AbortSignal does: not one removed, nor one added after', () => {
  const stop = new StopSignal();
  const heard: string[] = [];
  const kept = () => heard.push('kept');
  const removed = () => heard.push('removed');
  stop.signal.addEventListener('abort', kept, { once: true });
  stop.signal.addEventListener('abort', removed);
  stop.signal.removeEventListener('abort', removed);
  expect(stop.signal.aborted).toBe(false);
  stop.abort();
  stop.abort();
  stop.signal.addEventListener('abort', () => heard.push('late'));
  expect(heard).toEqual(['kept']);
  expect(stop.signal.aborted).toBe(true);
  expect(() => stop.signal.throwIfAborted()).toThrow(expect.objectContaining({ name: 'AbortError' }));
});

