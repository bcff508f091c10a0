import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type Message, type ReadMarker, type RoomChangeEvent } from '../../contracts/index.ts';
import type { MessageStore } from './message-store.ts';
import { roomKey } from '../live/bus-key.ts';
import type { RoomBus } from '../live/room-bus.ts';
import type { RoomChangeLog, Unnumbered } from './room-changes.ts';

/** Edits, deletions, read and delivered markers: each stored with its change in one transaction, then published. */
export interface MessageChangeService {
  edit(em: EntityManager, input: { roomId: string; messageId: string; userId: string; content: string }): Promise<Message>;
  delete(em: EntityManager, input: { roomId: string; messageId: string; userId: string }): Promise<Message>;
  /** Forward only: a marker at or past `seq` stays where it is, and nothing is published. */
  markRead(em: EntityManager, input: { roomId: string; userId: string; seq: number }): Promise<ReadMarker>;
  /**
   * A moderator's deletion: the message's content goes for good, whoever sent it and whether or
   * not it was deleted already, from the message and from the change log's earlier edits of it. The
   * tombstone keeps its seq; a message not deleted before gets a `message_deleted` change, as a
   * sender's deletion does.
   */
  redact(em: EntityManager, messageId: string): Promise<Message>;
  /**
   * Inside the caller's transaction: empties every message of `sender` in the room, renames its
   * sender to `renameTo`, and records a `message_deleted` change for those not deleted before.
   * Returns the changes, to {@link announce} once the caller has committed.
   */
  redactSender(tx: EntityManager, input: { roomId: string; sender: string; renameTo: string }): Promise<{ count: number; changes: RoomChangeEvent[] }>;
  /** Publishes changes committed by the caller. */
  announce(roomId: string, changes: readonly RoomChangeEvent[]): void;
  /** The delivered marker, by the same rules as {@link markRead}; subscribers get `delivered`. */
  markDelivered(em: EntityManager, input: { roomId: string; userId: string; seq: number }): Promise<ReadMarker>;
  /** Many delivered markers in one statement, each moved only forward and within its room (push notifications accepted together). */
  markDeliveredMany(em: EntityManager, moves: ReadonlyArray<{ roomId: string; userId: string; seq: number }>): Promise<void>;
}

export interface MessageChangeDeps {
  bus: RoomBus;
  store: MessageStore;
  changes: RoomChangeLog;
  maxChars: number;
  editWindowSeconds: number;
  now?: () => number;
  /**
   * What must follow changes whatever happens to this process (webhook jobs): written inside the
   * changes' transaction, before they are numbered (the number's lock is held to the commit), so
   * it commits with them or not at all; `committed` is told once they have.
   */
  outbox?: { write(tx: EntityManager, events: readonly Unnumbered[]): Promise<void>; committed(): void };
  /** A deleted message's files: scheduled for deletion in the deletion's transaction, and told once it commits. */
  attachmentsOf?: { release(tx: EntityManager, messageId: string): Promise<void>; released(): void };
  /** The content to store, or CONTENT_REJECTED (see moderation/); absent when nothing is configured. */
  moderate?(candidate: { action: 'edit'; sender: string; room: string; message_id: string; content: string }): Promise<string>;
}

export function createMessageChangeService({ bus, store, changes, maxChars, editWindowSeconds, now = Date.now, outbox, attachmentsOf, moderate }: MessageChangeDeps): MessageChangeService {
  /** The caller's own, undeleted message, or the precise reason it is not. */
  async function ownMessage(em: EntityManager, roomId: string, messageId: string, userId: string) {
    const message = await store.findInRoom(em.getConnection(), roomId, messageId);
    if (!message) throw new ParleyError('MESSAGE_NOT_FOUND', 'No such message in this room.');
    if (message.sender !== userId) throw new ParleyError('FORBIDDEN', 'Only the sender may change a message.');
    if (message.deleted_at) throw new ParleyError('MESSAGE_DELETED', 'The message was deleted.');
    return message;
  }

  /** Runs `change` and records its event in one transaction; publishes once committed. */
  async function commit<T>(em: EntityManager, roomId: string, change: (tx: EntityManager) => Promise<{ result: T; event?: Unnumbered }>): Promise<T> {
    const { result, stored } = await em.transactional(async (tx) => {
      const { result, event } = await change(tx);
      if (event) await outbox?.write(tx, [event]);
      return { result, stored: event && (await changes.record(tx, roomId, event)) };
    });
    if (stored) {
      bus.publish(roomKey(roomId), stored.event);
      outbox?.committed();
    }
    return result;
  }

  async function moveMarker(em: EntityManager, record: RoomChangeLog['recordRead'], { roomId, userId, seq }: { roomId: string; userId: string; seq: number }): Promise<ReadMarker> {
    const { lastSeq, marker, stored } = await record(em.getConnection(), roomId, userId, seq);
    if (seq > lastSeq) {
      throw new ParleyError('INVALID_INPUT', `seq ${seq} is past the room's last message (${lastSeq}).`, { fields: { seq: [`must be at most ${lastSeq}, the room's last seq`] } });
    }
    if (stored) bus.publish(roomKey(roomId), stored.event);
    return { seq: marker };
  }

  const deletedMeanwhile = () => new ParleyError('MESSAGE_DELETED', 'The message was deleted.');

  /** Empties the content of the room's logged edits of these messages (deletions carry none). */
  async function scrubLoggedContent(tx: EntityManager, roomId: string, messageIds: readonly string[]) {
    await tx.execute(
      `update room_changes set event = jsonb_set(event, '{message,content}', '""')
        where chat_room_id = ? and event->'message'->>'id' in (select json_array_elements_text(?::json)) and event->'message'->>'content' <> ''`,
      [roomId, JSON.stringify(messageIds)],
    );
  }

  return {
    async edit(em, { roomId, messageId, userId, content }) {
      if (content.length > maxChars) {
        throw new ParleyError('INVALID_INPUT', `Message content exceeds ${maxChars} characters.`, {
          fields: { content: [`Ensure this field has no more than ${maxChars} characters.`] },
        });
      }
      const message = await ownMessage(em, roomId, messageId, userId);
      if (now() - Date.parse(message.created_at) > editWindowSeconds * 1000) {
        throw new ParleyError('EDIT_WINDOW_CLOSED', `Messages can be edited for ${editWindowSeconds} seconds after sending.`);
      }
      // New words are checked as a send's are: an edit must not be the way around moderation.
      if (moderate) content = await moderate({ action: 'edit', sender: userId, room: roomId, message_id: messageId, content });
      return commit(em, roomId, async (tx) => {
        const edited = await store.edit(tx, roomId, messageId, content);
        if (!edited) throw deletedMeanwhile();
        return { result: edited, event: { type: 'message_updated', message: edited } };
      });
    },

    async delete(em, { roomId, messageId, userId }) {
      const own = await ownMessage(em, roomId, messageId, userId);
      const deleted = await commit(em, roomId, async (tx) => {
        const deleted = await store.softDelete(tx, roomId, messageId);
        if (!deleted) throw deletedMeanwhile();
        if (own.attachments) await attachmentsOf?.release(tx, messageId);
        return { result: deleted, event: { type: 'message_deleted', message: deleted } };
      });
      if (own.attachments) attachmentsOf?.released();
      return deleted;
    },

    async redact(em, messageId) {
      const [found] = await em.execute<Array<{ chat_room_id: string }>>('select chat_room_id from messages where id = ?', [messageId]);
      if (!found) throw new ParleyError('MESSAGE_NOT_FOUND', 'No such message.');
      const roomId = found.chat_room_id;
      const message = await commit(em, roomId, async (tx) => {
        const [redacted] = await store.redact(tx, roomId, { messageId });
        if (!redacted) throw new ParleyError('MESSAGE_NOT_FOUND', 'No such message.');
        await scrubLoggedContent(tx, roomId, [messageId]);
        await attachmentsOf?.release(tx, messageId);
        return { result: redacted.message, ...(redacted.fresh && { event: { type: 'message_deleted', message: redacted.message } }) };
      });
      attachmentsOf?.released();
      return message;
    },

    async redactSender(tx, { roomId, sender, renameTo }) {
      const redacted = await store.redact(tx, roomId, { sender, renameTo });
      await scrubLoggedContent(tx, roomId, redacted.map((r) => r.message.id));
      const deletions = redacted.filter((r) => r.fresh).map((r) => ({ type: 'message_deleted' as const, message: r.message }));
      deletions.sort((a, b) => a.message.seq - b.message.seq);
      await outbox?.write(tx, deletions);
      const stored: RoomChangeEvent[] = [];
      // Bounded statements for a user with a long history.
      for (let i = 0; i < deletions.length; i += 1000) stored.push(...(await changes.recordMany(tx, roomId, deletions.slice(i, i + 1000))).map((c) => c.event));
      return { count: redacted.length, changes: stored };
    },

    announce(roomId, events) {
      for (const event of events) bus.publish(roomKey(roomId), event);
      if (events.length) outbox?.committed();
    },

    markRead: (em, input) => moveMarker(em, changes.recordRead, input),
    markDelivered: (em, input) => moveMarker(em, changes.recordDelivered, input),

    async markDeliveredMany(em, moves) {
      for (const { roomId, event } of await changes.recordDeliveredMany(em.getConnection(), moves)) bus.publish(roomKey(roomId), event);
    },
  };
}
