import { expect } from 'vitest';
import { STORE_MESSAGES_WITH_ATTACHMENTS_SQL, storeMessagesParam } from '../../server/messages/message-store.ts';
import { withClient } from '../support/template-database.ts';
import { appTest } from '../support/test-app.ts';

const it = appTest(import.meta.filename);

type PlanNode = { 'Node Type': string; 'Index Name'?: string; 'Relation Name'?: string; Plans?: PlanNode[] };
const indexes = (node: PlanNode): string[] => [...(node['Index Name'] ? [node['Index Name']] : []), ...(node.Plans ?? []).flatMap(indexes)];

it('a send with an attachment finds its upload by key, while thousands of uploads are pending and the table’s statistics have not caught up with them', async ({ t }) => {
  await withClient(t.databaseUrl, async (c) => {
    // A burst of uploads never sent (they wait 24 h for the sweep), too recent for autovacuum to have analyzed.
    await c.query(`
      insert into users (id) select 'u' || i || s from generate_series(0, 2999) i, unnest(array['a', 'b']) s;
      insert into chat_rooms (id, participant1_id, participant2_id, accepted_at) select gen_random_uuid(), 'u' || i || 'a', 'u' || i || 'b', now() from generate_series(0, 2999) i;
      insert into attachments (id, chat_room_id, uploader_id, name, content_type, size) select gen_random_uuid(), id, participant1_id, 'f.txt', 'text/plain', 10 from chat_rooms;`);
    const { rows: [upload] } = await c.query<{ id: string; room: string; uploader: string }>('select id, chat_room_id as room, uploader_id as uploader from attachments limit 1');
    const param = storeMessagesParam([{ roomId: upload!.room, sender: upload!.uploader, content: '', attachments: [{ id: upload!.id, name: 'f.txt', contentType: 'text/plain', size: 10 }] }]).json;
    const { rows: plan } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (format json) ${STORE_MESSAGES_WITH_ATTACHMENTS_SQL}`, [param]);
    const used = indexes(plan[0]!['QUERY PLAN'][0]!.Plan);
    // The pending uploads' index is on their age (for the sweep): through it, the send read every pending upload.
    expect(used).not.toContain('attachments_pending_idx');
    expect(used).toContain('attachments_pkey');
    // And the send is stored, its attachment taken.
    const { rows } = await c.query(STORE_MESSAGES_WITH_ATTACHMENTS_SQL, [param]);
    expect(rows).toHaveLength(1);
    expect((await c.query("select status from attachments where id = $1", [upload!.id])).rows).toEqual([{ status: 'ready' }]);
  });
});
