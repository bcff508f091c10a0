import { Migration } from '@mikro-orm/migrations';

/**
 * Read markers, edit/delete state, presence's last-seen time, and the per-room change log that
 * lets a subscriber resume edits, deletions and read markers as exactly as it resumes messages.
 */
export class Migration20261126000000_chat_features extends Migration {
  override name = 'Migration20261126000000_chat_features';

  override up(): void {
    this.addSql('alter table messages add column edited_at timestamptz null, add column deleted_at timestamptz null');
    this.addSql('alter table users add column last_seen_at timestamptz null');
    // Hands out change seqs under the same row lock the sends take, so a change's place among
    // the messages (`at_seq`) is the order in which they committed.
    this.addSql('alter table chat_rooms add column last_change_seq bigint not null default 0');
    this.addSql(`create table read_markers (
      chat_room_id uuid not null references chat_rooms(id) on delete cascade,
      user_id varchar(64) not null references users(id),
      seq bigint not null,
      primary key (chat_room_id, user_id))`);
    this.addSql(`create table room_changes (
      chat_room_id uuid not null references chat_rooms(id) on delete cascade,
      change_seq bigint not null,
      at_seq bigint not null,
      event jsonb not null,
      created_at timestamptz not null default now(),
      primary key (chat_room_id, change_seq))`);
    // rooms.list's keyset: newest activity first, per participant.
    this.addSql('create index chat_rooms_p1_activity_idx on chat_rooms (participant1_id, (coalesce(last_message_at, created_at)) desc, id desc)');
    this.addSql('create index chat_rooms_p2_activity_idx on chat_rooms (participant2_id, (coalesce(last_message_at, created_at)) desc, id desc)');
  }

  override down(): void {
    this.addSql('drop index if exists chat_rooms_p1_activity_idx');
    this.addSql('drop index if exists chat_rooms_p2_activity_idx');
    this.addSql('drop table if exists room_changes');
    this.addSql('drop table if exists read_markers');
    this.addSql('alter table chat_rooms drop column last_change_seq');
    this.addSql('alter table users drop column last_seen_at');
    this.addSql('alter table messages drop column edited_at, drop column deleted_at');
  }
}
