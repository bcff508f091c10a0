import { boundedMessageContent, LegacySendMessageBody, ParleyError, type FieldErrors } from '../../contracts/index.ts';
import { fieldErrorsFromIssues, invalidFields } from '../errors/to-parley-error.ts';

const MISMATCHED_ROOM = 'Must be the id of the chat room in the URL.';
const NOT_CALLER = 'Must be the authenticated user.';

/**
 * Checks the body of `POST /<chat_room_id>/messages/` as DRF's serializer did: every field error
 * at once (a blank `content` and a `chat_room` of another room are reported together), including
 * the length limit the domain enforces again. A spoofed `sender` alone is a 403; beside other
 * field errors it is one more of them.
 */
export function createLegacySendBodyCheck(maxChars: number) {
  const schema = LegacySendMessageBody.extend({ content: boundedMessageContent(maxChars) });
  return (body: unknown, { roomId, userId }: { roomId: string; userId: string }) => {
    const parsed = schema.safeParse(body ?? {});
    const fields: FieldErrors = parsed.success ? {} : fieldErrorsFromIssues(parsed.error.issues);
    if (fields.non_field_errors) throw invalidFields(fields);
    const given = (body ?? {}) as Record<string, unknown>;
    if (!fields.chat_room && given.chat_room !== roomId) fields.chat_room = [MISMATCHED_ROOM];
    const spoofed = !fields.sender && given.sender !== userId;
    if (Object.keys(fields).length > 0) throw invalidFields(spoofed ? { ...fields, sender: [NOT_CALLER] } : fields);
    if (spoofed) throw new ParleyError('FORBIDDEN', 'You may only send messages as yourself.', { fields: { sender: [NOT_CALLER] } });
    return parsed.data!;
  };
}
