import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type Message, type ReadMarker, type RoomChangeEvent } from '../../contracts/index.ts';
import type { MessageStore } from './message-store.ts';
import { roomKey } from '../live/bus-key.ts';
import type { RoomBus } from '../live/room-bus.ts';
import type { RoomChangeLog } from './room-changes.ts';

/** Edits, deletions and read markers: each stored with its change in one transaction, then published. */
export interface MessageChangeService {
  edit(em: EntityManager, input: { roomId: string; messageId: string; userId: string; content: string }): Promise<Message>;
  delete(em: EntityManager, input: { roomId: string; messageId: string; userId: string }): Promise<Message>;
  /** Forward only: a marker at or past `seq` stays where it is, and nothing is published. */
  markRead(em: EntityManager, input: { roomId: string; userId: string; seq: number }): Promise<ReadMarker>;
}

export interface MessageChangeDeps {
  bus: RoomBus;
  store: MessageStore;
  changes: RoomChangeLog;
  maxChars: number;
  editWindowSeconds: number;
  now?: () => number;
  /** A deleted message's files: scheduled for deletion in the deletion's transaction, and told once it commits. */
  attachmentsOf?: { release(tx: EntityManager, messageId: string): Promise<void>; released(): void };
}

export function createMessageChangeService({ bus, store, changes, maxChars, editWindowSeconds, now = Date.now, attachmentsOf }: MessageChangeDeps): MessageChangeService {
  /** The caller's own, undeleted message, or the precise reason it is not. */
  async function ownMessage(em: EntityManager, roomId: string, messageId: string, userId: string) {
    const message = await store.findInRoom(em.getConnection(), roomId, messageId);
    if (!message) throw new ParleyError('MESSAGE_NOT_FOUND', 'No such message in this room.');
    if (message.sender !== userId) throw new ParleyError('FORBIDDEN', 'Only the sender may change a message.');
    if (message.deleted_at) throw new ParleyError('MESSAGE_DELETED', 'The message was deleted.');
    return message;
  }

  /** Runs `change` and records its event in one transaction; publishes once committed. */
  async function commit<T>(em: EntityManager, roomId: string, change: (tx: EntityManager) => Promise<{ result: T; event?: Omit<RoomChangeEvent, 'change_seq'> }>): Promise<T> {
    const { result, stored } = await em.transactional(async (tx) => {
      const { result, event } = await change(tx);
      return { result, stored: event && (await changes.record(tx, roomId, event as never)) };
    });
    if (stored) bus.publish(roomKey(roomId), stored.event);
    return result;
  }

  const deletedMeanwhile = () => new ParleyError('MESSAGE_DELETED', 'The message was deleted.');

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

    async markRead(em, { roomId, userId, seq }) {
      const { lastSeq, marker, stored } = await changes.recordRead(em.getConnection(), roomId, userId, seq);
      if (seq > lastSeq) {
        throw new ParleyError('INVALID_INPUT', `seq ${seq} is past the room's last message (${lastSeq}).`, { fields: { seq: [`must be at most ${lastSeq}, the room's last seq`] } });
      }
      if (stored) bus.publish(roomKey(roomId), stored.event);
      return { seq: marker };
    },
  };
}
