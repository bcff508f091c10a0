import { Migration } from '@mikro-orm/migrations';

/**
 * Moderation. A ban is one row per user (no foreign key: a user may be banned before their first
 * request); `ban_epoch` moves in the transaction of every ban and unban, so an instance that
 * missed the fan-out event sees that something changed with one single-row read, as with blocks.
 * `admin_audit` records every admin action; `reports.resolution_action` says what resolved a report.
 */
export class Migration20261201000000_admin extends Migration {
  override name = 'Migration20261201000000_admin';

  override up(): void {
    this.addSql(`create table user_bans (
      user_id varchar(64) primary key check (char_length(user_id) between 1 and 64),
      banned_at timestamptz not null default now(),
      until timestamptz null,
      reason text not null,
      banned_by varchar(64) not null)`);
    this.addSql('create table ban_epoch (id int primary key check (id = 1), n bigint not null)');
    this.addSql('insert into ban_epoch (id, n) values (1, 0)');
    this.addSql(`alter table reports add column resolution_action text null check (resolution_action in ('dismiss', 'delete_message', 'ban_user'))`);
    this.addSql('create index reports_reporter_idx on reports (reporter_id)');
    this.addSql('create index reports_reported_idx on reports (reported_user_id)');
    this.addSql(`create table admin_audit (
      id bigserial primary key,
      at timestamptz not null default now(),
      actor varchar(64) not null,
      action text not null,
      target_type text not null,
      target_id text not null,
      details jsonb not null default '{}')`);
    this.addSql('create index admin_audit_target_idx on admin_audit (target_id)');
  }

  override down(): void {
    this.addSql('drop table if exists admin_audit');
    this.addSql('drop index if exists reports_reported_idx');
    this.addSql('drop index if exists reports_reporter_idx');
    this.addSql('alter table reports drop column if exists resolution_action');
    this.addSql('drop table if exists ban_epoch');
    this.addSql('drop table if exists user_bans');
  }
}
