import { batchParts, bytes } from './batch-parts.ts';
import type { RoomBatch } from './fanout-engine.ts';

/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more; keep a margin. */
export const NOTIFY_PAYLOAD_MAX_BYTES = 7_900;

/**
 * Packs batches into as few JSON-array payloads as fit under `maxBytes`, in order. A batch too big
 * on its own goes in pieces (see {@link batchParts}): sent whole, NOTIFY refused it, and with it
 * every other payload of the flush.
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
