import type { RoomBatch } from './fanout-engine.ts';

/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more; keep a margin. */
export const NOTIFY_PAYLOAD_MAX_BYTES = 7_900;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Packs batches into as few JSON-array payloads as fit under `maxBytes`, in order. A batch too big
 * on its own goes in pieces (see {@link piecesOf}).
 */
export function packNotifyPayloads(batches: RoomBatch[], maxBytes = NOTIFY_PAYLOAD_MAX_BYTES): string[] {
  const payloads: string[] = [];
  let parts: string[] = [];
  let size = 2;
  const add = (part: string) => {
    const partBytes = bytes(part);
    if (parts.length && size + 1 + partBytes > maxBytes) {
      payloads.push(`[${parts.join(',')}]`);
      parts = [];
      size = 2;
    }
    parts.push(part);
    size += partBytes + (parts.length > 1 ? 1 : 0);
  };
  // Each part is then also a payload alone: `[part]`, two bytes more.
  for (const batch of batches) for (const part of batchParts(batch, maxBytes - 2)) add(part);
  if (parts.length) payloads.push(`[${parts.join(',')}]`);
  return payloads;
}

/**
 * A batch as JSON texts of at most `maxBytes` each: itself when it fits, else in pieces (see
 * {@link piecesOf}). For every engine whose server limits a message's size.
 */
export function batchParts(batch: RoomBatch, maxBytes: number): string[] {
  const whole = JSON.stringify(batch);
  return bytes(whole) <= maxBytes ? [whole] : piecesOf(batch, maxBytes);
}

/**
 * A batch too big for one payload, as batches of the same channel that each fit, in its order: its
 * messages are left out (receivers read `fromSeq..toSeq` from the database), and so is any other
 * event too big on its own (the feeds that receive it read again); the first piece carries the seq
 * range, and `omitted` when anything was left out. A burst of presence changes (a restart with
 * hundreds of users online) is one such batch: sent whole, NOTIFY refused it, and with it every
 * other payload of the flush.
 */
function piecesOf(batch: RoomBatch, maxBytes: number): string[] {
  const { events, fromSeq, toSeq, omitted, ...channel } = batch;
  const kept = events.filter((e) => e.type !== 'message');
  let left = omitted === true || kept.length < events.length;
  const pieces: string[][] = [];
  let piece: string[] = [];
  // A piece is `{…channel, events: [e1,e2,…]}` (plus the range on the first): its bytes are those of
  // the empty piece, its events', and their commas. The first piece's extra fields are reserved.
  const emptyBytes = bytes(JSON.stringify({ ...channel, events: [], fromSeq, toSeq, omitted: true }));
  let size = emptyBytes;
  for (const event of kept) {
    const text = JSON.stringify(event);
    const eventBytes = bytes(text);
    if (emptyBytes + eventBytes > maxBytes) {
      left = true;
      continue;
    }
    const added = eventBytes + (piece.length ? 1 : 0);
    if (piece.length && size + added > maxBytes) {
      pieces.push(piece);
      piece = [];
      size = emptyBytes;
    }
    size += eventBytes + (piece.length ? 1 : 0);
    piece.push(text);
  }
  if (piece.length || !pieces.length) pieces.push(piece);
  const head = (i: number) => JSON.stringify(i === 0 ? { ...channel, fromSeq, toSeq, ...(left && { omitted: true }) } : channel).slice(0, -1);
  return pieces.map((texts, i) => `${head(i)}${head(i).endsWith('{') ? '' : ','}"events":[${texts.join(',')}]}`);
}
