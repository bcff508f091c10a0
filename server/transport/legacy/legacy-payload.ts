import type { z } from 'zod';
import { ParleyError, type FieldErrors } from '../../../contracts/index.ts';
import { fieldErrorsFromIssues, invalidFields } from '../errors/to-parley-error.ts';

/** What a legacy payload (REST body or ws/chat frame) must name: the URL's room and users. */
export interface LegacyExpected {
  roomId: string;
  userId: string;
  otherUserId?: string;
}

const WORDING = {
  chat_room: 'Must be the id of the chat room in the URL.',
  other_user: 'Must be the other user in the URL.',
  sender: 'Must be the authenticated user.',
} as const;

/**
 * Checks a legacy payload as DRF's serializer did, for both legacy surfaces: every field error at
 * once (a blank `content` and a `chat_room` of another room are reported together), then whether
 * it names this URL's room and users. A spoofed `sender` alone is a 403; beside other field
 * errors it is one more of them.
 */
export function checkLegacyPayload<S extends z.ZodType>(schema: S, payload: unknown, expected: LegacyExpected): z.output<S> {
  const parsed = schema.safeParse(payload ?? {});
  const fields: FieldErrors = parsed.success ? {} : fieldErrorsFromIssues(parsed.error.issues);
  if (fields.non_field_errors || fields.action) throw invalidFields(fields);
  const given = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  if (!fields.chat_room && given.chat_room !== expected.roomId) fields.chat_room = [WORDING.chat_room];
  if (expected.otherUserId !== undefined && !fields.other_user && given.other_user !== expected.otherUserId) fields.other_user = [WORDING.other_user];
  // Only payloads with a sender field claim one (a typing frame's stray `sender` is ignored, as zod strips it).
  const claimsSender = 'shape' in schema && typeof schema.shape === 'object' && schema.shape !== null && 'sender' in schema.shape;
  const spoofed = claimsSender && !fields.sender && given.sender !== expected.userId;
  if (Object.keys(fields).length > 0) throw invalidFields(spoofed ? { ...fields, sender: [WORDING.sender] } : fields);
  if (spoofed) throw new ParleyError('FORBIDDEN', 'You may only send messages as yourself.', { fields: { sender: [WORDING.sender] } });
  return parsed.data!;
}
