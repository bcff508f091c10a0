import { boundedMessageContent, LegacySendMessageBody } from '../../../contracts/index.ts';
import { checkLegacyPayload, type LegacyExpected } from './legacy-payload.ts';

/** The body of `POST /<chat_room_id>/messages/`, with the length limit the domain enforces again. */
export function createLegacySendBodyCheck(maxChars: number) {
  const schema = LegacySendMessageBody.extend({ content: boundedMessageContent(maxChars) });
  return (body: unknown, expected: LegacyExpected) => checkLegacyPayload(schema, body, expected);
}
