import { z } from 'zod';
import { FIELD_MESSAGES } from './field-messages.ts';
import { countFrom, RoomId, storable, text, Timestamp } from './ids.ts';

/** At most this many attachments per message. */
export const MAX_ATTACHMENTS_PER_MESSAGE = 10;

/** An attachment id (UUID), handed out by `attachments.createUpload`. */
export const AttachmentId = z.uuid({ error: FIELD_MESSAGES.uuid });
export type AttachmentId = z.infer<typeof AttachmentId>;

/** A MIME type as `type/subtype`, lower case, no parameters. */
const MediaType = text().regex(/^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/, 'Enter a media type such as image/png (lower case, no parameters).');

/** A file name as the sender named it: shown to the reader and offered as the download's name. */
export const AttachmentName = storable(
  text()
    .min(1, FIELD_MESSAGES.blank)
    .max(255, FIELD_MESSAGES.maxChars(255))
    // Control characters and path separators have no place in a name a browser saves a file under.
    .refine((s) => !/[\u0000-\u001f\u007f/\\]/.test(s), 'File names may not contain control characters, / or \\.'),
);

/** Input of `attachments.createUpload`: a file the caller is about to upload for a message in `roomId`. */
export const CreateUploadInput = z.object({
  roomId: RoomId,
  name: AttachmentName,
  contentType: MediaType,
  /** Exact size in bytes; the upload may not exceed it, and a send checks it. */
  size: countFrom(1),
});
export type CreateUploadInput = z.infer<typeof CreateUploadInput>;

/**
 * Where and how to upload the bytes: `PUT` the file as the body with `headers`, or `POST` a
 * multipart form of `fields` followed by the file as field `file` (an S3 presigned POST). A
 * URL starting with `/` is relative to Parley's base URL.
 */
export const UploadTarget = z.object({
  url: z.string(),
  method: z.enum(['PUT', 'POST']),
  headers: z.record(z.string(), z.string()).optional(),
  fields: z.record(z.string(), z.string()).optional(),
});
export type UploadTarget = z.infer<typeof UploadTarget>;

/** Output of `attachments.createUpload`; attach `attachmentId` to a send once uploaded, before `expiresAt`. */
export const CreatedUpload = z.object({ attachmentId: AttachmentId, upload: UploadTarget, expiresAt: Timestamp });
export type CreatedUpload = z.infer<typeof CreatedUpload>;

/**
 * A file of a message. `url` and `thumbnailUrl` are signed and expire (server `ATTACHMENT_URL_TTL`);
 * refresh one with `attachments.url`. A URL starting with `/` is relative to Parley's base URL.
 * `width`, `height` and `thumbnailUrl` appear on images once their thumbnail is made.
 */
export const Attachment = z.object({
  id: AttachmentId,
  name: z.string(),
  contentType: z.string(),
  size: z.number().int().positive(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  url: z.string(),
  thumbnailUrl: z.string().optional(),
});
export type Attachment = z.infer<typeof Attachment>;

/** Input of `attachments.url`. */
export const AttachmentUrlInput = z.object({ attachmentId: AttachmentId });

/** Output of `attachments.url`: fresh signed URLs of one attachment. */
export const AttachmentUrls = z.object({ url: z.string(), thumbnailUrl: z.string().optional(), expiresAt: Timestamp });
export type AttachmentUrls = z.infer<typeof AttachmentUrls>;

/**
 * What legacy surfaces (REST, `ws/chat`), which know only a message's text, show for a message
 * whose content is empty: one `[image]` or `[file]` per attachment.
 */
export function attachmentPlaceholder(attachments: readonly { contentType: string }[]): string {
  return attachments.map((a) => (a.contentType.startsWith('image/') ? '[image]' : '[file]')).join(' ');
}
