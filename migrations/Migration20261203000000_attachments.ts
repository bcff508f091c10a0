import { Migration } from '@mikro-orm/migrations';

/**
 * Attachments. A row is `pending` from `attachments.createUpload` until a send attaches it
 * (`ready`, `message_id` set in the send's transaction), and `deleting` once its message is
 * deleted or it was never attached: the job deletes its objects, retrying with `next_try_at`,
 * then the row. No foreign keys to rooms or messages: a row must outlive a hard-deleted message
 * until its objects are gone. `messages.attachments` is what readers see of a message's files,
 * written with the message, so reading history needs no join.
 */
export class Migration20261203000000_attachments extends Migration {
  override name = 'Migration20261203000000_attachments';

  override up(): void {
    this.addSql(`create table attachments (
      id uuid primary key,
      chat_room_id uuid not null,
      uploader_id varchar(64) not null,
      message_id uuid null,
      name text not null,
      content_type text not null,
      size bigint not null check (size > 0),
      status text not null default 'pending' check (status in ('pending', 'ready', 'deleting')),
      thumb_state text not null default 'none' check (thumb_state in ('none', 'pending', 'done', 'failed')),
      attempts int not null default 0,
      next_try_at timestamptz not null default now(),
      created_at timestamptz not null default now())`);
    this.addSql('create index attachments_message_idx on attachments (message_id) where message_id is not null');
    this.addSql("create index attachments_pending_idx on attachments (created_at) where status = 'pending'");
    this.addSql("create index attachments_deleting_idx on attachments (next_try_at) where status = 'deleting'");
    this.addSql("create index attachments_thumb_idx on attachments (next_try_at) where thumb_state = 'pending'");
    this.addSql('alter table messages add column attachments jsonb null');
  }

  override down(): void {
    this.addSql('alter table messages drop column if exists attachments');
    this.addSql('drop table if exists attachments');
  }
}
