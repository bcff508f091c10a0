import { expect } from 'vitest';
import { ARRIVED_SQL, FIND_MANY_SQL } from '../../server/attachments/attachment-store.ts';
import { STORE_MESSAGES_WITH_ATTACHMENTS_SQL, STORE_ONE_WITH_ATTACHMENTS_SQL } from '../../server/messages/message-store.ts';
import { withClient } from '../support/template-database.ts';
import { appTest } from '../support/test-app.ts';

const it = appTest(import.meta.filename);

type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; 'Index Cond'?: string; Plans?: PlanNode[] };

/**
 * Where a plan reads `attachments` through an index with no condition: a partial index read whole,
 * every pending upload (or every one waiting for a job) for one row. A sequential scan of a table
 * this small is the right plan, and the table's next statistics replace it.
 */
const unkeyed = (node: PlanNode): string[] => [
  ...(node['Relation Name'] === 'attachments' && node['Index Name'] && !node['Index Cond'] ? [`${node['Node Type']} ${node['Index Name']}`] : []),
  ...(node.Plans ?? []).flatMap(unkeyed),
];

it('the prepared statements that find uploads by id never read every pending upload for one, even when the table has no statistics yet, as after a first burst of uploads', async ({ t }) => {
  await withClient(t.databaseUrl, async (c) => {
    // Rows the planner has no statistics of: a plan cached now is the one every later call runs.
    await c.query(`insert into attachments (id, chat_room_id, uploader_id, name, content_type, size)
      select gen_random_uuid(), gen_random_uuid(), 'u', 'f.txt', 'text/plain', 10 from generate_series(1, 20)`);
    await c.query('set plan_cache_mode = force_generic_plan');
    const statements: Array<[string, string, string]> = [
      ['an upload checked on arrival', ARRIVED_SQL, "('00000000-0000-0000-0000-000000000001')"],
      ['uploads a send checks', FIND_MANY_SQL, "(array['00000000-0000-0000-0000-000000000001']::uuid[])"],
      ['sends with attachments', STORE_MESSAGES_WITH_ATTACHMENTS_SQL, `('${JSON.stringify([{ id: '00000000-0000-0000-0000-000000000002', room_id: '00000000-0000-0000-0000-000000000003', sender_id: 'u', content: '', client_id: null, ord: 1, attachments: [{ id: '00000000-0000-0000-0000-000000000001', name: 'f.txt', contentType: 'text/plain', size: 10 }] }])}')`],
      ['a lone send with attachments', STORE_ONE_WITH_ATTACHMENTS_SQL, `('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000002', 'u', '', '[]', array['00000000-0000-0000-0000-000000000001']::uuid[])`],
    ];
    const reads: Record<string, string[]> = {};
    for (const [name, sql, args] of statements) {
      await c.query(`prepare probe as ${sql}`);
      const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (format json) execute probe ${args}`);
      await c.query('deallocate probe');
      reads[name] = unkeyed(rows[0]!['QUERY PLAN'][0]!.Plan);
    }
    expect(reads).toEqual(Object.fromEntries(statements.map(([name]) => [name, []])));
  });
});
