import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type AttachmentUrls, type CreatedUpload, type Message, type RoomEvent } from '../../contracts/index.ts';
import type { ArrivalCheck, ObjectStorage } from '../infra/storage/object-storage.ts';
import type { Sql, StoredAttachment } from '../messages/message-store.ts';
import type { SendAttachments } from '../messages/messages.service.ts';
import { createAttachmentStore, idOfUploadKey, keysOf, type AttachmentRow } from './attachment-store.ts';
import { createReadBatcher } from '../messages/read-batcher.ts';
import { contentMatches, INLINE_IMAGE_TYPES, SNIFF_BYTES, typeAllowed } from './content-check.ts';

export interface AttachmentLimits {
  maxBytes: number;
  /** Allowed types: exact names and `type/*` patterns. */
  types: readonly string[];
  uploadTtlSeconds: number;
  urlTtlSeconds: number;
  /** Pending uploads older than this are deleted. */
  pendingTtlSeconds: number;
}

export interface AttachmentServiceDeps {
  storage: ObjectStorage;
  sql: Sql;
  limits: AttachmentLimits;
  /** Records a `message_updated` change (a thumbnail arrived) in `tx` and returns its event. */
  recordUpdate(tx: EntityManager, roomId: string, message: Message): Promise<RoomEvent>;
  transaction<T>(fn: (tx: EntityManager) => Promise<T>): Promise<T>;
  publish(roomId: string, event: RoomEvent): void;
  /** Makes a thumbnail of an image and tells its size; undefined when images cannot be read here. */
  thumbnailer?: (image: Buffer) => Promise<{ thumbnail: Buffer; contentType: string; width: number; height: number }>;
  onError(err: unknown, what: string): void;
  /** How often the jobs run besides being kicked (ms). */
  jobIntervalMs?: number;
  now?: () => number;
}

export interface JobReport {
  swept: number;
  deleted: number;
  thumbnails: number;
  failed: number;
}

export interface AttachmentService extends SendAttachments {
  readonly storage: ObjectStorage;
  /** A send's checks of an upload, made as its bytes arrive at a store that receives them itself. */
  readonly arrivals: ArrivalCheck;
  createUpload(input: { roomId: string; uploader: string; name: string; contentType: string; size: number }): Promise<CreatedUpload>;
  /** The room of a ready attachment (for the caller's participation check), or undefined. */
  roomOf(attachmentId: string): Promise<{ roomId: string; message: Message } | undefined>;
  /** Fresh signed URLs of an attachment of `message`. */
  urls(message: Message, attachmentId: string): Promise<AttachmentUrls>;
  /** The message with signed URLs on its attachments (the same object when it has none). */
  signMessage(message: Message): Promise<Message>;
  /** An event whose message has attachments, with signed URLs; other events as they are. */
  signEvent<E extends { type: string }>(event: E): Promise<E>;
  /** Schedules a deleted message's objects for deletion, in its transaction. */
  release(tx: EntityManager, messageId: string): Promise<void>;
  released(): void;
  /** One pass of every job (sweep, deletions, thumbnails); what the timer runs. */
  runJobs(): Promise<JobReport>;
  start(): void;
  close(): Promise<void>;
}

const invalid = (message: string) => new ParleyError('INVALID_INPUT', message, { fields: { attachmentIds: [message] } });
const THUMBNAIL_ATTEMPTS = 3;
const JOB_BATCH = 20;
/** Fresh uploads remembered at most (a few hundred bytes each). */
const FRESH_MAX = 10_000;

export function createAttachmentService({ storage, sql, limits, recordUpdate, transaction, publish, thumbnailer, onError, jobIntervalMs = 30_000, now = Date.now }: AttachmentServiceDeps): AttachmentService {
  const store = createAttachmentStore();
  // Sends checked in one turn look their attachments up in one statement.
  const rowsById = createReadBatcher<string, AttachmentRow | undefined>({
    keyOf: (id) => id,
    run: async (ids) => {
      const rows = new Map((await store.findMany(sql, ids)).map((r) => [r.id, r]));
      return ids.map((id) => rows.get(id.toLowerCase()));
    },
  });

  /**
   * The rows this instance just created, while their upload is fresh: a send checks their fields
   * (uploader, room, name, type, size never change) without reading them back, one round trip
   * less per send. Taken on first use; whether an attachment is still pending is the send
   * statement's own check. An upload checked on arrival here says so in its row here too; one
   * that arrived at another instance is checked again by the send. Bounded: the oldest go first.
   */
  const fresh = new Map<string, { row: AttachmentRow; at: number }>();
  const freshMs = Math.min(limits.uploadTtlSeconds, limits.pendingTtlSeconds) * 1000;
  const remember = (row: AttachmentRow) => {
    if (freshMs <= 0) return;
    if (fresh.size >= FRESH_MAX) fresh.delete(fresh.keys().next().value!);
    fresh.set(row.id, { row, at: now() });
  };
  const recall = (id: string) => {
    const key = id.toLowerCase();
    const entry = fresh.get(key);
    if (!entry) return undefined;
    fresh.delete(key);
    return now() - entry.at < freshMs ? entry.row : undefined;
  };

  /**
   * Attachments of this instance's sends from their checks until their statement has run. A
   * second send of one of them meanwhile is refused at once: it would pass the checks (the first
   * has not committed) and then fail its statement as a whole, and with it every other send of
   * that statement, retried one by one while the lane waits: one account sending its upload twice
   * at once could hold up everyone's attachments. Sends on other instances are still caught by the
   * statement.
   */
  const held = new Set<string>();

  /**
   * URLs expire at the next whole minute past the TTL: a message read twice within a minute gets
   * the same URLs, so browsers reuse what they fetched.
   */
  const urlExpiry = () => new Date(Math.ceil((now() + limits.urlTtlSeconds * 1000) / 60_000) * 60_000);

  async function sign(a: StoredAttachment, expiresAt: Date) {
    const keys = keysOf(a.id);
    const inline = INLINE_IMAGE_TYPES.has(a.contentType);
    const url = await storage.downloadUrl(keys.file, { contentType: a.contentType, fileName: a.name, inline, expiresAt });
    const thumbnailUrl = a.thumb ? await storage.downloadUrl(keys.thumb, { contentType: 'image/webp', fileName: a.name, inline: true, expiresAt }) : undefined;
    return { url, thumbnailUrl };
  }

  async function signMessage(message: Message): Promise<Message> {
    if (!message.attachments?.length) return message;
    const expiresAt = urlExpiry();
    const attachments = await Promise.all(
      (message.attachments as StoredAttachment[]).map(async (a) => {
        const { url, thumbnailUrl } = await sign(a, expiresAt);
        const { id, name, contentType, size, width, height } = a;
        return { id, name, contentType, size, ...(width && height && { width, height }), url, ...(thumbnailUrl && { thumbnailUrl }) };
      }),
    );
    return { ...message, attachments };
  }

  // A live event reaches every subscriber of its room as one object: sign it once for all of them.
  const signedEvents = new WeakMap<object, { at: number; event: Promise<unknown> }>();

  // --- jobs ---------------------------------------------------------------------------------

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<JobReport> | undefined;
  let closed = false;

  async function deleteOne(id: string) {
    const keys = keysOf(id);
    await Promise.all([storage.delete(keys.upload), storage.delete(keys.file), storage.delete(keys.thumb)]);
    await store.deleteRow(sql, id);
  }

  async function thumbnailOne(id: string, contentType: string) {
    if (!INLINE_IMAGE_TYPES.has(contentType) || !thumbnailer) {
      await sql.execute("update attachments set thumb_state = 'none' where id = ?", [id]);
      return false;
    }
    const keys = keysOf(id);
    const made = await thumbnailer(await storage.read(keys.file));
    await storage.write(keys.thumb, made.thumbnail, made.contentType);
    const updated = await transaction(async (tx) => {
      const done = await store.thumbnailDone(tx, id, { width: made.width, height: made.height });
      return done && { roomId: done.roomId, event: await recordUpdate(tx, done.roomId, done.message) };
    });
    if (updated) publish(updated.roomId, updated.event);
    return true;
  }

  /** The jobs a pass runs: all of them on the timer; what a send or a deletion just made due otherwise. */
  type Jobs = { sweep: boolean; deletes: boolean; thumbnails: boolean };
  const ALL: Jobs = { sweep: true, deletes: true, thumbnails: true };

  async function jobPass(jobs: Jobs): Promise<JobReport> {
    const report: JobReport = { swept: 0, deleted: 0, thumbnails: 0, failed: 0 };
    if (jobs.sweep) report.swept = await store.sweepPending(sql, limits.pendingTtlSeconds);
    for (; jobs.deletes; ) {
      const due = await store.claim(sql, 'delete', JOB_BATCH, 300);
      for (const row of due) {
        try {
          await deleteOne(row.id);
          report.deleted++;
        } catch (err) {
          report.failed++;
          onError(err, 'deleting an attachment failed; it is retried');
          await store.retryLater(sql, row.id, 'delete', false);
        }
      }
      if (due.length < JOB_BATCH) break;
    }
    for (; jobs.thumbnails; ) {
      const due = await store.claim(sql, 'thumbnail', JOB_BATCH, 300);
      for (const row of due) {
        try {
          if (await thumbnailOne(row.id, row.content_type)) report.thumbnails++;
        } catch (err) {
          report.failed++;
          onError(err, 'making a thumbnail failed');
          await store.retryLater(sql, row.id, 'thumbnail', row.attempts + 1 >= THUMBNAIL_ATTEMPTS);
        }
      }
      if (due.length < JOB_BATCH) break;
    }
    return report;
  }

  /**
   * One pass at a time; a kick during a pass runs another after it, with every job either asked
   * for. A send kicks only the thumbnail job, and only for an image: a pass of every job per send
   * was three statements per send competing with the sends for the pool.
   */
  let wanted: Jobs | undefined;
  function schedule(jobs: Jobs): Promise<JobReport> {
    if (running) {
      wanted = wanted ? { sweep: wanted.sweep || jobs.sweep, deletes: wanted.deletes || jobs.deletes, thumbnails: wanted.thumbnails || jobs.thumbnails } : jobs;
      return running;
    }
    running = jobPass(jobs).finally(() => {
      running = undefined;
      const next = wanted;
      wanted = undefined;
      if (next && !closed) void schedule(next).catch((err: unknown) => onError(err, 'attachment jobs failed'));
    });
    return running;
  }

  /** A whole pass that starts after the call, and its report (a pass under way may run fewer jobs). */
  async function runJobs(): Promise<JobReport> {
    while (running) await running.catch(() => undefined);
    return schedule(ALL);
  }

  // Looked at again when the turn comes: a close in between must not be followed by a pass.
  const kick = (jobs: Jobs) =>
    setImmediate(() => {
      if (!closed) void schedule(jobs).catch((err: unknown) => onError(err, 'attachment jobs failed'));
    });

  const arrivals: ArrivalCheck = {
    peekBytes: SNIFF_BYTES,
    checkedKey(grant) {
      const id = idOfUploadKey(grant.key);
      return id && keysOf(id).file;
    },
    // The URL's type and size are under its signature, as createUpload stored them.
    passes: async (grant, size, head) => size === grant.maxBytes && (await contentMatches(grant.contentType, head)).ok,
    async arrived(grant) {
      const id = idOfUploadKey(grant.key)!;
      await store.arrived(sql, id);
      const entry = fresh.get(id);
      if (entry) entry.row = { ...entry.row, upload_checked: true };
    },
  };

  return {
    storage,
    arrivals,

    async createUpload({ roomId, uploader, name, contentType, size }) {
      if (!typeAllowed(contentType, limits.types)) {
        throw new ParleyError('INVALID_INPUT', `Files of type ${contentType} are not accepted.`, { fields: { contentType: [`Files of type ${contentType} are not accepted.`] } });
      }
      if (size > limits.maxBytes) throw new ParleyError('PAYLOAD_TOO_LARGE', `Files may be at most ${limits.maxBytes} bytes.`);
      const id = randomUUID();
      const expiresAt = new Date(now() + limits.uploadTtlSeconds * 1000);
      await store.insertPending(sql, { id, roomId, uploader, name, contentType, size });
      remember({ id, chat_room_id: roomId, uploader_id: uploader, message_id: null, name, content_type: contentType, size, status: 'pending', upload_checked: false });
      const upload = await storage.uploadTarget(keysOf(id).upload, { contentType, size, expiresAt });
      return { attachmentId: id, upload, expiresAt: expiresAt.toISOString() };
    },

    async prepare(roomId, sender, ids) {
      const holding = ids.map((id) => id.toLowerCase());
      const busy = ids.find((id, i) => held.has(holding[i]!) || holding.indexOf(holding[i]!) !== i);
      if (busy) throw invalid(`Attachment ${busy} is already part of a message.`);
      for (const id of holding) held.add(id);
      return Promise.all(
        ids.map(async (id) => {
          const row = recall(id) ?? (await rowsById.load(id));
          // Another user's or another room's attachment is "no such attachment": its existence is not theirs to learn.
          if (!row || row.uploader_id !== sender || row.chat_room_id !== roomId) throw invalid(`No attachment ${id} of yours in this room.`);
          if (row.status !== 'pending') throw invalid(`Attachment ${id} is already part of a message.`);
          // Checked as it arrived, and where no upload URL reaches since: nothing to read again.
          if (row.upload_checked) return { id, name: row.name, contentType: row.content_type, size: Number(row.size) };
          const keys = keysOf(id);
          // Checked where the upload URL cannot reach: a re-upload after this check changes nothing that was checked.
          const object = await storage.moveAndPeek(keys.upload, keys.file, SNIFF_BYTES);
          if (!object) throw invalid(`Attachment ${id} has not been uploaded.`);
          const { size, head } = object;
          if (size !== Number(row.size)) throw invalid(`Attachment ${id} is ${size} bytes, not the ${row.size} it was declared with.`);
          const match = await contentMatches(row.content_type, head);
          if (!match.ok) throw invalid(`Attachment ${id} is not ${row.content_type}${match.actual ? ` (its content is ${match.actual})` : ''}.`);
          return { id, name: row.name, contentType: row.content_type, size };
        }),
      ).catch((err: unknown) => {
        for (const id of holding) held.delete(id);
        throw err;
      });
    },

    finished(ids) {
      for (const id of ids) held.delete(id.toLowerCase());
    },

    sent(stored) {
      if (stored.attachments?.some((a) => INLINE_IMAGE_TYPES.has(a.contentType))) kick({ sweep: false, deletes: false, thumbnails: true });
    },

    roomOf: (attachmentId) => store.findReady(sql, attachmentId),

    async urls(message, attachmentId) {
      const a = (message.attachments as StoredAttachment[] | undefined)?.find((x) => x.id === attachmentId);
      if (!a) throw new ParleyError('ATTACHMENT_NOT_FOUND', 'No such attachment.');
      const expiresAt = urlExpiry();
      const { url, thumbnailUrl } = await sign(a, expiresAt);
      return { url, ...(thumbnailUrl && { thumbnailUrl }), expiresAt: expiresAt.toISOString() };
    },

    signMessage,

    async signEvent(event) {
      const message = (event as { message?: Message }).message;
      if (!message?.attachments?.length) return event;
      const cached = signedEvents.get(event);
      if (cached && now() - cached.at < 30_000) return cached.event as Promise<typeof event>;
      const signed = signMessage(message).then((m) => ({ ...event, message: m }));
      signedEvents.set(event, { at: now(), event: signed });
      return signed;
    },

    release: (tx, messageId) => store.releaseMessage(tx, messageId),
    released: () => kick({ sweep: false, deletes: true, thumbnails: false }),

    runJobs,

    start() {
      timer = setInterval(() => kick(ALL), jobIntervalMs);
      timer.unref();
      kick(ALL);
    },

    async close() {
      closed = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
      storage.close?.();
    },
  };
}
