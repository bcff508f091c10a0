import { Migration } from '@mikro-orm/migrations';

/**
 * How far push and webhook jobs have been made from each room's messages (see
 * server/push/message-jobs.ts). Rooms there already start at their last message: what was sent
 * before this existed is not announced.
 */
export class Migration20261204000000_message_job_cursors extends Migration {
  override name = 'Migration20261204000000_message_job_cursors';

  override up(): void {
    this.addSql(`create table message_job_cursors (
      chat_room_id uuid primary key references chat_rooms(id) on delete cascade,
      seq bigint not null)`);
    this.addSql('insert into message_job_cursors (chat_room_id, seq) select id, last_seq from chat_rooms');
  }

  override down(): void {
    this.addSql('drop table if exists message_job_cursors');
  }
}
