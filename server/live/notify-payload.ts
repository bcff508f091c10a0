import type { RoomBatch } from './fanout-engine.ts';

/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more; keep a margin. */
export const NOTIFY_PAYLOAD_MAX_BYTES = 7_900;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Packs batches into as few JSON-array payloads as fit under `maxBytes`. A batch too big on its own
 * keeps its seq range and typing events and leaves its messages out: receivers read those rows.
 */
export function packNotifyPayloads(batches: RoomBatch[], maxBytes = NOTIFY_PAYLOAD_MAX_BYTES): string[] {
  const payloads: string[] = [];
  let parts: string[] = [];
  let size = 2;
  for (const batch of batches) {
    let part = JSON.stringify(batch);
    if (bytes(part) + 2 > maxBytes) {
      part = JSON.stringify({ ...batch, events: batch.events.filter((e) => e.type !== 'message'), omitted: true });
    }
    const partBytes = bytes(part);
    if (parts.length && size + 1 + partBytes > maxBytes) {
      payloads.push(`[${parts.join(',')}]`);
      parts = [];
      size = 2;
    }
    parts.push(part);
    size += partBytes + (parts.length > 1 ? 1 : 0);
  }
  if (parts.length) payloads.push(`[${parts.join(',')}]`);
  return payloads;
}
