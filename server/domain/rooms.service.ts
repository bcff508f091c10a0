import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type OpenedRoom, type RoomSummary } from '../../contracts/index.ts';
import { ChatRoom, type IChatRoom } from '../db/entities/chat-room.entity.ts';
import { isoTimestamp, messageFromRow, type MessageRow } from './message-store.ts';
import type { UserDirectory } from './user-directory.ts';

type Participants = readonly [string, string];

export interface RoomService {
  /** The caller's room with `otherUserId`, created on first use; concurrent calls from either side yield one room. */
  open(em: EntityManager, userId: string, otherUserId: string, name?: string): Promise<OpenedRoom>;
  /** The caller's rooms, most recent activity first, each with its newest message. */
  list(em: EntityManager, userId: string): Promise<RoomSummary[]>;
  /** The room's participants; ROOM_NOT_FOUND for a missing room and for a non-participant alike. */
  requireParticipant(em: EntityManager, roomId: string, userId: string): Promise<Participants>;
  lastSeq(em: EntityManager, roomId: string): Promise<number>;
}

export function createRoomService({ users, cacheSize = 50_000 }: { users: UserDirectory; cacheSize?: number }): RoomService {
  // Participants never change, so a room's pair can be cached for the life of the process.
  const participants = new Map<string, Participants>();

  function remember(roomId: string, pair: Participants) {
    if (participants.size >= cacheSize) participants.delete(participants.keys().next().value!);
    participants.set(roomId, pair);
  }

  async function findPair(em: EntityManager, a: string, b: string) {
    return em.findOne(ChatRoom, {
      $or: [
        { participant1: a, participant2: b },
        { participant1: b, participant2: a },
      ],
    });
  }

  return {
    async open(em, userId, otherUserId, name) {
      if (userId === otherUserId) {
        throw new ParleyError('INVALID_INPUT', 'Cannot open a room with yourself.', {
          fields: { other_user: ['must be another user'] },
        });
      }
      await users.ensure(em, otherUserId);
      let room = await findPair(em, userId, otherUserId);
      if (!room) {
        try {
          room = em.create(ChatRoom, { participant1: userId, participant2: otherUserId, name: name ?? null });
          await em.flush();
        } catch (err) {
          if (!(err instanceof UniqueConstraintViolationException)) throw err;
          em.clear();
          room = await findPair(em, userId, otherUserId);
          if (!room) throw err;
        }
      }
      return toRoomDto(room);
    },

    async list(em, userId) {
      const rows = await em.execute<Array<RoomListRow>>(
        `select r.id, r.participant1_id, r.participant2_id, r.name, r.last_seq,
                m.id as m_id, m.sender_id as m_sender_id, m.content as m_content, ${isoTimestamp('m.created_at')} as m_created_at, m.seq as m_seq
           from chat_rooms r
           left join messages m on m.chat_room_id = r.id and m.seq = r.last_seq
          where r.participant1_id = ? or r.participant2_id = ?
          order by coalesce(r.last_message_at, r.created_at) desc, r.id`,
        [userId, userId],
      );
      return rows.map((r) => ({
        id: r.id,
        participant1: r.participant1_id,
        participant2: r.participant2_id,
        name: r.name,
        last_seq: Number(r.last_seq),
        last_message: r.m_id
          ? messageFromRow({ id: r.m_id, chat_room_id: r.id, sender_id: r.m_sender_id!, content: r.m_content!, created_at: r.m_created_at!, seq: r.m_seq! })
          : null,
      }));
    },

    async requireParticipant(em, roomId, userId) {
      let pair = participants.get(roomId);
      if (!pair) {
        const [row] = await em.execute<Array<{ participant1_id: string; participant2_id: string }>>(
          'select participant1_id, participant2_id from chat_rooms where id = ?',
          [roomId],
        );
        if (row) remember(roomId, (pair = [row.participant1_id, row.participant2_id]));
      }
      if (!pair || (pair[0] !== userId && pair[1] !== userId)) {
        throw new ParleyError('ROOM_NOT_FOUND', 'Not found.');
      }
      return pair;
    },

    async lastSeq(em, roomId) {
      const [row] = await em.execute<Array<{ last_seq: string }>>('select last_seq from chat_rooms where id = ?', [roomId]);
      return Number(row?.last_seq ?? 0);
    },
  };
}

interface RoomListRow {
  id: string;
  participant1_id: string;
  participant2_id: string;
  name: string | null;
  last_seq: string;
  m_id: string | null;
  m_sender_id: string | null;
  m_content: string | null;
  m_created_at: MessageRow['created_at'] | null;
  m_seq: string | null;
}

export function toRoomDto(room: IChatRoom): OpenedRoom {
  return { id: room.id, participant1: room.participant1.id, participant2: room.participant2.id, name: room.name ?? null, last_seq: room.lastSeq ?? 0 };
}
