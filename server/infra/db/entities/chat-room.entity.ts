import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';
import { User } from './user.entity.ts';

/**
 * A room of two participants. One room per unordered pair (a unique index over
 * least/greatest of the two ids, see the initial migration). `lastSeq` hands out message seqs.
 */
export const ChatRoom = defineEntity({
  name: 'ChatRoom',
  tableName: 'chat_rooms',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    participant1: p.manyToOne(User).ref(),
    participant2: p.manyToOne(User).ref(),
    name: p.string().length(255).nullable(),
    lastSeq: p.bigint('number').default(0),
    lastMessageAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type IChatRoom = InferEntity<typeof ChatRoom>;
