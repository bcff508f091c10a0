import { Migration } from '@mikro-orm/migrations';

/**
 * Message requests, privacy settings and archiving. A room is a request until its recipient
 * (participant2: the opener is always participant1) answers it: `accepted_at` is set by their
 * first send or `rooms.accept`; `declined_at` by `rooms.decline`, which closes the room to sends
 * like a block. Rooms whose recipient has written are accepted already; the others become
 * requests, which is what their recipient never agreed to. `archived_seqN`: participant N hid the
 * room while its last seq was this; a later message shows it again, with no write on the send path.
 * `last_seen_at` is kept to the minute: a precise time says when someone put their phone down.
 */
export class Migration20261202000000_requests extends Migration {
  override name = 'Migration20261202000000_requests';

  override up(): void {
    this.addSql(`alter table chat_rooms
      add column accepted_at timestamptz null,
      add column declined_at timestamptz null,
      add column archived_seq1 bigint null,
      add column archived_seq2 bigint null`);
    this.addSql(`update chat_rooms r set accepted_at = r.created_at
      where exists (select 1 from messages m where m.chat_room_id = r.id and m.sender_id = r.participant2_id)`);
    this.addSql('create index chat_rooms_requests_idx on chat_rooms (participant1_id) where accepted_at is null');
    this.addSql('create index chat_rooms_declined1_idx on chat_rooms (participant1_id) where declined_at is not null');
    this.addSql('create index chat_rooms_declined2_idx on chat_rooms (participant2_id) where declined_at is not null');
    this.addSql(`alter table users
      add column show_presence boolean not null default true,
      add column send_read_receipts boolean not null default true`);
    this.addSql('create index users_private_idx on users (id) where not (show_presence and send_read_receipts)');
    this.addSql(`update users set last_seen_at = date_trunc('minute', last_seen_at) where last_seen_at is not null`);
  }

  override down(): void {
    this.addSql('drop index if exists users_private_idx');
    this.addSql('alter table users drop column if exists show_presence, drop column if exists send_read_receipts');
    this.addSql('drop index if exists chat_rooms_declined2_idx');
    this.addSql('drop index if exists chat_rooms_declined1_idx');
    this.addSql('drop index if exists chat_rooms_requests_idx');
    this.addSql('alter table chat_rooms drop column if exists accepted_at, drop column if exists declined_at, drop column if exists archived_seq1, drop column if exists archived_seq2');
  }
}
