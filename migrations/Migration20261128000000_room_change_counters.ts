import { Migration } from '@mikro-orm/migrations';

/**
 * Change seqs move out of the room row into a row of their own. A change numbered from
 * `chat_rooms` held the row lock every send batch of that room needs until it committed, so each
 * read marker moved stalled the room's sends (issue 13: sends at 0.5× while markers moved). Rows
 * are created by a room's first change; a room without one has change seq 0.
 */
export class Migration20261128000000_room_change_counters extends Migration {
  override name = 'Migration20261128000000_room_change_counters';

  override up(): void {
    // `last_at_seq` keeps `at_seq` from going backwards along change_seq (see domain/room-changes.ts).
    this.addSql(`create table room_change_counters (
      chat_room_id uuid primary key references chat_rooms(id) on delete cascade,
      last_change_seq bigint not null,
      last_at_seq bigint not null)`);
    this.addSql(`insert into room_change_counters (chat_room_id, last_change_seq, last_at_seq)
      select r.id, r.last_change_seq, coalesce((select max(c.at_seq) from room_changes c where c.chat_room_id = r.id), 0)
        from chat_rooms r where r.last_change_seq > 0`);
    this.addSql('alter table chat_rooms drop column last_change_seq');
  }

  override down(): void {
    this.addSql('alter table chat_rooms add column last_change_seq bigint not null default 0');
    this.addSql('update chat_rooms r set last_change_seq = c.last_change_seq from room_change_counters c where c.chat_room_id = r.id');
    this.addSql('drop table room_change_counters');
  }
}
