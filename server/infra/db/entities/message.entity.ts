import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';
import { ChatRoom } from './chat-room.entity.ts';
import { User } from './user.entity.ts';

/** A stored message; `seq` is dense per room and is the only order. */
export const Message = defineEntity({
  name: 'Message',
  tableName: 'messages',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    chatRoom: p.manyToOne(ChatRoom).ref(),
    sender: p.manyToOne(User).ref(),
    content: p.text(),
    createdAt: p.datetime().onCreate(() => new Date()),
    seq: p.bigint('number'),
    clientId: p.string().length(64).nullable(),
    editedAt: p.datetime().nullable(),
    /** Soft delete: the row keeps its seq, its content is emptied. */
    deletedAt: p.datetime().nullable(),
  },
  uniques: [{ properties: ['chatRoom', 'seq'] }, { properties: ['chatRoom', 'sender', 'clientId'] }],
});
export type IMessage = InferEntity<typeof Message>;
