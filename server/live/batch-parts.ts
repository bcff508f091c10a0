import type { RoomBatch } from './fanout-engine.ts';
import type { CarriedEvent } from './room-bus.ts';

export const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * A batch as JSON texts of at most `maxBytes` each, for an engine whose server limits a message's
 * size: the batch itself when it fits, else batches of the same channel that each fit, in its
 * order. Those leave out its messages (receivers read `fromSeq..toSeq` from the database) and any
 * other event too big on its own (the feeds that receive it read again); the first piece carries
 * the seq range, and `omitted` when anything was left out. A burst of presence changes (a restart
 * with hundreds of users online) is one such batch: sent whole, the server refused it.
 */
export function batchParts(batch: RoomBatch, maxBytes: number): string[] {
  const whole = JSON.stringify(batch);
  if (bytes(whole) <= maxBytes) return [whole];
  const { events, fromSeq, toSeq, omitted, ...channel } = batch;
  let left = omitted === true;
  // Every piece is measured as if it carried the first piece's range and flag.
  const emptyBytes = bytes(JSON.stringify({ ...channel, fromSeq, toSeq, omitted: true, events: [] }));
  const pieces: CarriedEvent[][] = [[]];
  let size = emptyBytes;
  for (const event of events) {
    // A message never goes: the receivers read the range whatever its size.
    const eventBytes = event.type === 'message' ? Infinity : bytes(JSON.stringify(event));
    if (emptyBytes + eventBytes > maxBytes) {
      left = true;
      continue;
    }
    if (pieces.at(-1)!.length && size + 1 + eventBytes > maxBytes) {
      pieces.push([]);
      size = emptyBytes;
    }
    size += eventBytes + (pieces.at(-1)!.length ? 1 : 0);
    pieces.at(-1)!.push(event);
  }
  return pieces.map((piece, i) => JSON.stringify(i === 0 ? { ...channel, fromSeq, toSeq, ...(left && { omitted: true }), events: piece } : { ...channel, events: piece }));
}
