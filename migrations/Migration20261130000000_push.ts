import { Migration } from '@mikro-orm/migrations';

/**
 * Web Push: devices' subscriptions, muted rooms, and the durable job queue that sends pushes
 * (and, later, other outgoing work) after a send commits, never inside it.
 */
export class Migration20261130000000_push extends Migration {
  override name = 'Migration20261130000000_push';

  override up(): void {
    this.addSql(`create table push_subscriptions (
      id uuid primary key default gen_random_uuid(),
      user_id varchar(64) not null references users(id),
      endpoint text not null unique,
      p256dh text not null,
      auth text not null,
      user_agent text null,
      created_at timestamptz not null default clock_timestamp())`);
    this.addSql('create index push_subscriptions_user_idx on push_subscriptions (user_id, created_at desc)');
    this.addSql(`create table room_mutes (
      chat_room_id uuid not null references chat_rooms(id) on delete cascade,
      user_id varchar(64) not null references users(id),
      until timestamptz null,
      primary key (chat_room_id, user_id))`);
    // One row per pending job; a keyed job coalesces: enqueueing its key again bumps `version`.
    this.addSql(`create table jobs (
      id bigserial primary key,
      kind text not null,
      key text null,
      payload jsonb not null,
      run_at timestamptz not null default now(),
      attempts int not null default 0,
      version int not null default 1,
      locked_until timestamptz null,
      last_error text null,
      created_at timestamptz not null default now())`);
    this.addSql('create unique index jobs_kind_key_idx on jobs (kind, key)');
    this.addSql('create index jobs_run_at_idx on jobs (run_at)');
  }

  override down(): void {
    this.addSql('drop table if exists jobs');
    this.addSql('drop table if exists room_mutes');
    this.addSql('drop table if exists push_subscriptions');
  }
}
