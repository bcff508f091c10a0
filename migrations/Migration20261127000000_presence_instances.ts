import { Migration } from '@mikro-orm/migrations';

/**
 * Presence across instances: each instance's heartbeat, and which users it holds sockets of, so a
 * user stays online while any live instance holds them and an instance that died lets its users go.
 * No foreign keys: an instance's rows are deleted by whoever reaps it, and users come and go with
 * their sockets faster than a cascade would help.
 */
export class Migration20261127000000_presence_instances extends Migration {
  override name = 'Migration20261127000000_presence_instances';

  override up(): void {
    this.addSql('create table presence_instances (id uuid primary key, heartbeat_at timestamptz not null default now())');
    this.addSql('create table presence_users (instance_id uuid not null, user_id varchar(64) not null, primary key (instance_id, user_id))');
    this.addSql('create index presence_users_user_idx on presence_users (user_id)');
  }

  override down(): void {
    this.addSql('drop table presence_users');
    this.addSql('drop table presence_instances');
  }
}
