import { Migration20261125000000_init } from './Migration20261125000000_init.ts';
import { Migration20261126000000_chat_features } from './Migration20261126000000_chat_features.ts';
import { Migration20261127000000_presence_instances } from './Migration20261127000000_presence_instances.ts';
import { Migration20261128000000_room_change_counters } from './Migration20261128000000_room_change_counters.ts';
import { Migration20261129000000_safety } from './Migration20261129000000_safety.ts';
import { Migration20261129000000_delivered_markers } from './Migration20261129000000_delivered_markers.ts';
import { Migration20261130000000_push } from './Migration20261130000000_push.ts';
import { Migration20261201000000_admin } from './Migration20261201000000_admin.ts';
import { Migration20261202000000_requests } from './Migration20261202000000_requests.ts';
import { Migration20261203000000_attachments } from './Migration20261203000000_attachments.ts';
import { Migration20261204000000_message_job_cursors } from './Migration20261204000000_message_job_cursors.ts';
import { Migration20261205000000_attachment_arrival } from './Migration20261205000000_attachment_arrival.ts';

/** Every migration, oldest first. Listed explicitly so no file globbing depends on the runtime. */
export const migrationsList = [Migration20261125000000_init, Migration20261126000000_chat_features, Migration20261127000000_presence_instances, Migration20261128000000_room_change_counters, Migration20261129000000_safety, Migration20261129000000_delivered_markers, Migration20261130000000_push, Migration20261201000000_admin, Migration20261202000000_requests, Migration20261203000000_attachments, Migration20261204000000_message_job_cursors, Migration20261205000000_attachment_arrival];
