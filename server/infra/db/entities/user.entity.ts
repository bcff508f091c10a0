import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/** A user, known by the JWT `sub` it authenticates with; created on first sight. */
export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.string().primary().length(64),
    createdAt: p.datetime().onCreate(() => new Date()),
    /** When the user's last socket closed (presence). */
    lastSeenAt: p.datetime().nullable(),
  },
});
export type IUser = InferEntity<typeof User>;
