import { Migration } from '@mikro-orm/migrations';

/**
 * `upload_checked`: the local store checked the upload's bytes as they arrived (size and real
 * type, what a send checks) and put them at the file key, which no upload URL reaches. A send of
 * such an attachment does not read them back. False for every upload before this existed: a file
 * at the file key that was not put there on arrival is checked by the send, as before.
 */
export class Migration20261205000000_attachment_arrival extends Migration {
  override name = 'Migration20261205000000_attachment_arrival';

  override up(): void {
    this.addSql('alter table attachments add column upload_checked boolean not null default false');
  }

  override down(): void {
    this.addSql('alter table attachments drop column if exists upload_checked');
  }
}
