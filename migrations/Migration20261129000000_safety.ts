import { Migration } from '@mikro-orm/migrations';

/**
 * Blocks and reports. A block is one row per direction; the send statement probes both directions
 * by primary key, and `user_blocks_blocked_idx` answers "who blocked me". `safety_epoch` moves in
 * the transaction of every block and unblock, so an instance that missed the fan-out event sees
 * that something changed with one single-row read. Reports keep a snapshot of the reported
 * message; `status`, `resolved_*` and the status index are for the moderation that reads them.
 */
export class Migration20261129000000_safety extends Migration {
  override name = 'Migration20261129000000_safety';

  override up(): void {
    this.addSql(`create table user_blocks (
      blocker_id varchar(64) not null references users(id),
      blocked_id varchar(64) not null check (char_length(blocked_id) between 1 and 64),
      created_at timestamptz not null default now(),
      primary key (blocker_id, blocked_id),
      check (blocker_id <> blocked_id))`);
    this.addSql('create index user_blocks_blocked_idx on user_blocks (blocked_id, blocker_id)');
    this.addSql('create table safety_epoch (id int primary key check (id = 1), n bigint not null)');
    this.addSql('insert into safety_epoch (id, n) values (1, 0)');
    this.addSql(`create table reports (
      id uuid primary key,
      reporter_id varchar(64) not null references users(id),
      chat_room_id uuid not null references chat_rooms(id) on delete cascade,
      message_id uuid null,
      reported_user_id varchar(64) not null,
      reason text not null check (reason in ('spam', 'harassment', 'hate', 'sexual_content', 'violence', 'self_harm', 'other')),
      note text null,
      message_snapshot jsonb null,
      status text not null default 'open' check (status in ('open', 'resolved', 'dismissed')),
      created_at timestamptz not null default now(),
      resolved_at timestamptz null,
      resolved_by varchar(64) null,
      resolution_note text null)`);
    // One report per reporter and message, and one per reporter and conversation.
    this.addSql('create unique index reports_reporter_message_uq on reports (reporter_id, message_id) where message_id is not null');
    this.addSql('create unique index reports_reporter_room_uq on reports (reporter_id, chat_room_id) where message_id is null');
    this.addSql('create index reports_status_created_idx on reports (status, created_at)');
  }

  override down(): void {
    this.addSql('drop table if exists reports');
    this.addSql('drop table if exists safety_epoch');
    this.addSql('drop table if exists user_blocks');
  }
}
