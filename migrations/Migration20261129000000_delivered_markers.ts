import { Migration } from '@mikro-orm/migrations';

/**
 * Delivery receipts: a per-user, per-room marker beside the read marker, forward only, its moves
 * recorded in the room's change log like read markers.
 */
export class Migration20261129000000_delivered_markers extends Migration {
  override name = 'Migration20261129000000_delivered_markers';

  override up(): void {
    this.addSql(`create table delivered_markers (
      chat_room_id uuid not null references chat_rooms(id) on delete cascade,
      user_id varchar(64) not null references users(id),
      seq bigint not null,
      primary key (chat_room_id, user_id))`);
  }

  override down(): void {
    this.addSql('drop table if exists delivered_markers');
  }
}
