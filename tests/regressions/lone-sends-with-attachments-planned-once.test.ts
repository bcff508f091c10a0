import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { STORE_ONE_WITH_ATTACHMENTS_SQL } from '../../server/messages/message-store.ts';
import { withClient } from '../support/template-database.ts';
import { appTest } from '../support/test-app.ts';

const it = appTest(import.meta.filename);

it('a lone send with attachments runs a plan made once per connection, not one planned for each call', async ({ t }) => {
  await withClient(t.databaseUrl, async (c) => {
    const sends = 20;
    await c.query("insert into users (id) values ('pa'), ('pb')");
    const { rows: [room] } = await c.query<{ id: string }>("insert into chat_rooms (id, participant1_id, participant2_id, accepted_at) values (gen_random_uuid(), 'pa', 'pb', now()) returning id");
    const { rows: uploads } = await c.query<{ id: string }>(
      `insert into attachments (id, chat_room_id, uploader_id, name, content_type, size)
       select gen_random_uuid(), $1, 'pa', 'f.txt', 'text/plain', 10 from generate_series(1, 1000) returning id`,
      [room!.id],
    );
    await c.query('analyze attachments');
    for (const { id } of uploads.slice(0, sends)) {
      const stored = await c.query({ name: 'lone_send', text: STORE_ONE_WITH_ATTACHMENTS_SQL, values: [room!.id, randomUUID(), 'pa', '', JSON.stringify([{ id, name: 'f.txt', contentType: 'text/plain', size: 10 }]), [id]] });
      expect(stored.rowCount).toBe(1);
    }
    // PostgreSQL tries five custom plans before it weighs the generic one.
    const { rows: [plans] } = await c.query<{ custom_plans: string; generic_plans: string }>("select custom_plans, generic_plans from pg_prepared_statements where name = 'lone_send'");
    expect({ custom: Number(plans!.custom_plans), generic: Number(plans!.generic_plans) }).toEqual({ custom: 5, generic: sends - 5 });
  });
});
