import { Migration } from '@mikro-orm/migrations';

export class Migration20261125000000_init extends Migration {
  override name = 'Migration20261125000000_init';

  override up(): void {
    this.addSql(`create table users (
      id varchar(64) primary key check (char_length(id) between 1 and 64),
      created_at timestamptz not null default now())`);
    this.addSql(`create table chat_rooms (
      id uuid primary key,
      participant1_id varchar(64) not null references users(id),
      participant2_id varchar(64) not null references users(id),
      name varchar(255) null,
      last_seq bigint not null default 0,
      last_message_at timestamptz null,
      created_at timestamptz not null default now(),
      constraint chat_rooms_distinct_participants check (participant1_id <> participant2_id))`);
    // One room per unordered pair: (a, b) and (b, a) collide here, which makes rooms.open race-safe.
    this.addSql(`create unique index chat_rooms_pair_uq on chat_rooms
      (least(participant1_id, participant2_id), greatest(participant1_id, participant2_id))`);
    this.addSql('create index chat_rooms_participant1_idx on chat_rooms (participant1_id)');
    this.addSql('create index chat_rooms_participant2_idx on chat_rooms (participant2_id)');
    this.addSql(`create table messages (
      id uuid primary key,
      chat_room_id uuid not null references chat_rooms(id) on delete cascade,
      sender_id varchar(64) not null references users(id),
      content text not null,
      created_at timestamptz not null default now(),
      seq bigint not null,
      client_id varchar(64) null,
      constraint messages_chat_room_id_seq_unique unique (chat_room_id, seq),
      constraint messages_chat_room_id_sender_id_client_id_unique unique (chat_room_id, sender_id, client_id))`);
  }

  override down(): void {
    this.addSql('drop table if exists messages');
    this.addSql('drop table if exists chat_rooms');
    this.addSql('drop table if exists users');
  }
}
